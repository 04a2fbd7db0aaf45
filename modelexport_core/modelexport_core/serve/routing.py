"""Routing a processor to the `transformers.pipeline` keywords it fills, as the plugins say."""

from __future__ import annotations

from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.plugins.manager import hook


def routed_processor(pipeline_class: type, processor: Any) -> dict[str, Any]:
    """The `transformers.pipeline` keywords a processor fills for `pipeline_class`, e.g. {"tokenizer": ...}."""
    routed = hook().route_processor(pipeline_class=pipeline_class, processor=processor)
    if routed is None:
        raise ModelExportError(f"Cannot tell which pipeline argument a {type(processor).__name__} is for")
    return routed
