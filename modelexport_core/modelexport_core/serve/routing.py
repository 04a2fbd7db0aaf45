"""Routing a processor to the `transformers.pipeline` keyword it belongs to, by what it is."""

from __future__ import annotations

from typing import Any

from modelexport_core.errors import ModelExportError


def route_by_base_class(pipeline_class: type, processor: Any) -> dict[str, Any] | None:
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


def routed_processor(pipeline_class: type, processor: Any) -> dict[str, Any]:
    """The `transformers.pipeline` keywords a processor fills for `pipeline_class`, e.g. {"tokenizer": ...}."""
    from modelexport_core.plugins.manager import hook

    routed = hook().route_processor(pipeline_class=pipeline_class, processor=processor)
    if routed is None:
        raise ModelExportError(f"Cannot tell which pipeline argument a {type(processor).__name__} is for")
    return routed
