"""The multimodal plugin: registers the image-text and document modalities, the OnnxConfigs Optimum lacks for
them, the document ORTModel, and the routing of a processor's parts to pipelines that load them apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelexport_core import Modality, ModelExportError, hookimpl
from modelexport_multimodal.modality import DocumentModality, ImageTextModality

# Where a pipeline takes a processor's parts apart: the part, the pipeline keyword, the pipeline's flag for it.
PARTS = (
    ("tokenizer", "tokenizer", "_load_tokenizer"),
    ("image_processor", "image_processor", "_load_image_processor"),
    ("feature_extractor", "feature_extractor", "_load_feature_extractor"),
)


@hookimpl
def register_modalities(register: Callable[[Modality], None]) -> None:
    register(ImageTextModality())
    register(DocumentModality())


@hookimpl
def route_processor(pipeline_class: type, processor: Any) -> dict[str, Any] | None:
    """A processor (or ONNXProcessor) goes to a pipeline that loads its parts apart as those parts."""
    from transformers import ProcessorMixin

    if not isinstance(getattr(processor, "wrapped", processor), ProcessorMixin):
        return None
    if getattr(pipeline_class, "_load_processor", True) is not False:
        return None  # the pipeline takes the processor whole: core's rule routes it
    routed = {
        keyword: getattr(processor, part)
        for part, keyword, flag in PARTS
        if getattr(pipeline_class, flag, None) is not False and getattr(processor, part, None) is not None
    }
    return routed or None


@hookimpl
def onnx_config(config: Any, task: str) -> Any | None:
    model_type = getattr(config, "model_type", None)
    if model_type == "layoutlm" and task == "question-answering":
        raise ModelExportError("LayoutLM question answering is exported with --task document-question-answering")
    if model_type == "layoutlm" and task == "document-question-answering":
        from modelexport_multimodal.onnx_configs import LayoutLMQuestionAnsweringOnnxConfig

        return LayoutLMQuestionAnsweringOnnxConfig(config, task=task)
    if model_type == "clip" and task == "zero-shot-image-classification":
        from modelexport_multimodal.onnx_configs import CLIPZeroShotOnnxConfig

        return CLIPZeroShotOnnxConfig(config, task=task)
    return None


@hookimpl
def ort_model_class(task: str) -> type | None:
    if task != "document-question-answering":
        return None
    from modelexport_multimodal.modeling import ORTModelForDocumentQuestionAnswering

    return ORTModelForDocumentQuestionAnswering
