"""Core's built-in plugin, registered like any other: the `cpu` target and routing by transformers base class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelexport_core.plugins.hookspecs import hookimpl
from modelexport_core.targets.cpu import CPU
from modelexport_core.targets.target import ExecutionTarget


@hookimpl
def register_targets(register: Callable[[ExecutionTarget], None]) -> None:
    register(CPU)


@hookimpl(trylast=True)
def route_processor(pipeline_class: type, processor: Any) -> dict[str, Any] | None:
    """The keyword of the first transformers base class the (wrapped) processor is an instance of and the
    pipeline class loads (its `_load_*` flag is not False)."""
    from transformers import BaseImageProcessor, FeatureExtractionMixin, PreTrainedTokenizerBase, ProcessorMixin

    inner = getattr(processor, "wrapped", processor)
    candidates = [
        (ProcessorMixin, "processor", "_load_processor"),
        (PreTrainedTokenizerBase, "tokenizer", "_load_tokenizer"),
        (BaseImageProcessor, "image_processor", "_load_image_processor"),
        (FeatureExtractionMixin, "feature_extractor", "_load_feature_extractor"),
    ]
    for base, keyword, needs in candidates:
        if isinstance(inner, base) and getattr(pipeline_class, needs, True) is not False:
            return {keyword: processor}
    return None
