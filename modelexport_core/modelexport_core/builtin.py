"""Core's built-in plugin: the generic rules every modality shares, registered like any other plugin."""

from __future__ import annotations

from typing import Any

from .hookspecs import hookimpl


@hookimpl(trylast=True)
def route_processor(pipeline_class: type, processor: Any) -> dict[str, Any] | None:
    """Route by what the processor is (transformers base classes) and what the pipeline class loads."""
    from transformers import (
        BaseImageProcessor,
        FeatureExtractionMixin,
        PreTrainedTokenizerBase,
        ProcessorMixin,
    )

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
