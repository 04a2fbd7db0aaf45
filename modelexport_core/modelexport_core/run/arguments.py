"""`--pipeline-arg KEY=VALUE`: keywords for every pipeline call, typed as a user means them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from modelexport_core.errors import ModelExportError


def parse_pipeline_args(texts: Sequence[str]) -> dict[str, Any]:
    """`top_k=3` -> {"top_k": 3}; a JSON value as JSON, a comma-separated one as a list of strings
    (`candidate_labels=cat,dog`), anything else as a string."""
    parsed: dict[str, Any] = {}
    for text in texts:
        key, sign, value = text.partition("=")
        if not sign or not key.strip():
            raise ModelExportError(f"--pipeline-arg takes KEY=VALUE (e.g. top_k=3), not {text!r}")
        try:
            parsed[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.strip()] = value.split(",") if "," in value else value
    return parsed
