"""Core's built-in plugin: the generic rules every modality shares, registered like any other plugin."""

from __future__ import annotations

from typing import Any

from .hookspecs import ExecutionTarget, hookimpl

CPU_PROVIDER = "CPUExecutionProvider"


def _cpu_session(model: str | bytes, options: Any) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(model, sess_options=options, providers=[CPU_PROVIDER])


CPU = ExecutionTarget(name="cpu", provider=CPU_PROVIDER, is_available=lambda: True, build_session=_cpu_session)


@hookimpl
def register_targets() -> list[ExecutionTarget]:
    """onnxruntime's CPU provider: always available, the reference every other target is compared with."""
    return [CPU]


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
