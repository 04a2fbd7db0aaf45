"""Resolve what the user called MODEL: a local model directory or a Hub id, and load its config."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.package.layout import CONFIG_FILE

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelSource:
    """A model the user named: `location` is what transformers loads, `hub_kwargs` what the Hub needs."""

    given: str
    location: str
    is_local: bool
    hub_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        """The name recorded in metadata: a local directory's name, never its full path."""
        return Path(self.location).name if self.is_local else self.given


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}


def resolve_source(
    model: str | os.PathLike,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | None = None,
    trust_remote_code: bool = False,
) -> ModelSource:
    """Check that MODEL is a usable local directory or a reachable Hub id; raise a one-line error otherwise."""
    given = str(model)
    path = Path(given).expanduser()
    hub_kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if path.exists():
        if not path.is_dir():
            raise ModelExportError(f"{given} is a file; MODEL must be a model directory or a Hub id")
        if not (path / CONFIG_FILE).is_file():
            raise ModelExportError(f"{given} has no {CONFIG_FILE}; point MODEL at a saved HuggingFace model directory")
        return ModelSource(given, str(path.resolve()), True, hub_kwargs)
    if not _HUB_ID.match(given) or given.startswith("."):
        raise ModelExportError(f"Model directory not found: {given}")
    if hub_offline():
        raise ModelExportError(
            f"{given} is not a local directory and the Hub is offline (HF_HUB_OFFLINE=1): "
            "pass a local model directory or go online"
        )
    hub_kwargs.update({k: v for k, v in (("revision", revision), ("token", token), ("cache_dir", cache_dir)) if v})
    return ModelSource(given, given, False, hub_kwargs)


def load_config(source: ModelSource) -> Any:
    """Load the model's config (remote code only when the user allowed it)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source.location, **source.hub_kwargs)
    except (OSError, ValueError, KeyError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = " (pass --trust-remote-code to run the model's own code)" if "trust_remote_code" in str(err) else ""
        raise ModelExportError(f"Cannot load the config of {source.given}: {first_line}{hint}") from err


def local_files(source: ModelSource) -> Path:
    """A local directory holding the model's small JSON files (config, preprocessor): the model's own, or,
    for a Hub id, a snapshot of just those files."""
    if source.is_local:
        return Path(source.location)
    from huggingface_hub import snapshot_download

    options = {k: v for k, v in source.hub_kwargs.items() if k in ("revision", "token", "cache_dir")}
    try:
        return Path(snapshot_download(source.given, allow_patterns=["*.json"], **options))
    except Exception as err:  # any Hub failure is the user's to fix (network, access, name)
        raise ModelExportError(f"Cannot fetch the JSON files of {source.given}: {str(err).splitlines()[0]}") from err
