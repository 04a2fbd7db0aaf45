"""Multimodal hooks: two modalities, composed from the text and vision plugins.

- `multimodal`: image + text models (CLIP, zero-shot image classification), processed by `ONNXProcessor`;
  images and candidate texts have fixed batches of their own.
- `document`: text + layout models (LayoutLM v1, document question answering with caller-given words and
  boxes), processed by the text plugin's `ONNXTokenizer`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelexport_core import Modality, ModelExportError, hookimpl
from modelexport_text import plugin as text
from modelexport_vision import plugin as vision

MULTIMODAL = Modality(
    name="multimodal", tasks=("zero-shot-image-classification",), input_names=("input_ids", "pixel_values")
)
DOCUMENT = Modality(name="document", tasks=("document-question-answering",), input_names=("input_ids", "bbox"))
DEFAULT_TEXT_BATCH_SIZE = 1
SAMPLE_LABELS = ("cat", "dog", "bird", "car")  # benchmark candidate labels
# Where a pipeline takes a processor's parts apart: the part, the pipeline keyword, the pipeline's flag for it.
PARTS = (
    ("tokenizer", "tokenizer", "_load_tokenizer"),
    ("image_processor", "image_processor", "_load_image_processor"),
    ("feature_extractor", "feature_extractor", "_load_feature_extractor"),
)


@hookimpl
def register_modalities() -> list[Modality]:
    return [MULTIMODAL, DOCUMENT]


@hookimpl
def detect_shapes(modality: str, input_shapes: dict[str, list[int | None]]) -> dict[str, int | None] | None:
    if modality == DOCUMENT.name:
        return text.detect_shapes(modality=text.TEXT.name, input_shapes=input_shapes)
    if modality != MULTIMODAL.name:
        return None
    words = text.detect_shapes(modality=text.TEXT.name, input_shapes=input_shapes) or {}
    images = vision.detect_shapes(modality=vision.VISION.name, input_shapes=input_shapes) or {}
    return {**images, "text_batch_size": words.get("batch_size"), "sequence_length": words.get("sequence_length")}


@hookimpl
def default_shapes(modality: str, package_dir: Path) -> dict[str, int] | None:
    if modality == DOCUMENT.name:
        return text.default_shapes(modality=text.TEXT.name, package_dir=package_dir)
    if modality != MULTIMODAL.name:
        return None
    images = vision.default_shapes(modality=vision.VISION.name, package_dir=package_dir) or {}
    return {
        **images,
        "num_channels": _vision_config(package_dir).get("num_channels", images.get("num_channels")),
        "text_batch_size": DEFAULT_TEXT_BATCH_SIZE,
        "sequence_length": min(text.DEFAULT_SEQUENCE_LENGTH, _text_max_length(package_dir)),
    }


@hookimpl
def copy_configs(modality: str, source: str, out_dir: Path, hub_kwargs: dict[str, Any]) -> list[str] | None:
    if modality == DOCUMENT.name:
        return text.copy_configs(modality=text.TEXT.name, source=source, out_dir=out_dir, hub_kwargs=hub_kwargs)
    if modality != MULTIMODAL.name:
        return None
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(source, **hub_kwargs)
    except (OSError, ValueError, TypeError) as err:
        raise ModelExportError(
            f"{source} has no usable processor files: save the processor beside the model (processor.save_pretrained)"
        ) from err
    before = _files(out_dir)
    processor.save_pretrained(out_dir)  # returns only processor_config.json, not its parts' files
    return sorted(_files(out_dir) - before)


@hookimpl
def load_processor(modality: str, processor_dir: str) -> Any | None:
    if modality == DOCUMENT.name:
        return text.load_processor(modality=text.TEXT.name, processor_dir=processor_dir)
    if modality != MULTIMODAL.name:
        return None
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(processor_dir)


@hookimpl
def wrap_processor(modality: str, processor: Any, shapes: dict[str, int]) -> Any | None:
    if modality == DOCUMENT.name:
        return text.wrap_processor(modality=text.TEXT.name, processor=processor, shapes=shapes)
    if modality != MULTIMODAL.name:
        return None
    from transformers import ProcessorMixin

    from .processor import ONNXProcessor

    return ONNXProcessor(processor, shapes) if isinstance(processor, ProcessorMixin) else None


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
def pipeline_class(task: str, modality: str) -> type | None:
    if modality != DOCUMENT.name or task != "document-question-answering":
        return None
    from .pipelines import FixedLengthDocumentQuestionAnsweringPipeline

    return FixedLengthDocumentQuestionAnsweringPipeline


@hookimpl
def onnx_config(config: Any, task: str) -> Any | None:
    model_type = getattr(config, "model_type", None)
    if model_type == "layoutlm" and task == "question-answering":
        raise ModelExportError("LayoutLM question answering is exported with --task document-question-answering")
    if model_type == "layoutlm" and task == "document-question-answering":
        from .onnx_configs import LayoutLMQuestionAnsweringOnnxConfig

        return LayoutLMQuestionAnsweringOnnxConfig(config, task=task)
    if model_type == "clip" and task == "zero-shot-image-classification":
        from .onnx_configs import CLIPZeroShotOnnxConfig

        return CLIPZeroShotOnnxConfig(config, task=task)
    return None


@hookimpl
def ort_model_class(task: str) -> type | None:
    if task != "document-question-answering":
        return None
    from .modeling import ORTModelForDocumentQuestionAnswering

    return ORTModelForDocumentQuestionAnswering


@hookimpl
def sample_inputs(modality: str, sequence_length: int) -> dict[str, list[Any]] | None:
    return vision.sample_inputs(modality=vision.VISION.name, sequence_length=0) if modality == MULTIMODAL.name else None


@hookimpl
def benchmark_kwargs(task: str) -> dict[str, dict[str, Any]] | None:
    """Zero-shot image classification runs with candidate labels; the raw session gets the pipeline's sentences."""
    if task != "zero-shot-image-classification":
        return None
    import inspect

    from transformers import ZeroShotImageClassificationPipeline

    template = inspect.signature(ZeroShotImageClassificationPipeline.preprocess).parameters["hypothesis_template"]
    return {
        "pipeline": {"candidate_labels": list(SAMPLE_LABELS)},
        "processor": {"text": [template.default.format(label) for label in SAMPLE_LABELS]},
    }


def _files(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir() if path.is_file()}


def _read_config(package_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(package_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def _vision_config(package_dir: Path) -> dict[str, Any]:
    return _read_config(package_dir).get("vision_config") or {}


def _text_max_length(package_dir: Path) -> int:
    limit = (_read_config(package_dir).get("text_config") or {}).get("max_position_embeddings")
    return limit if isinstance(limit, int) else text.DEFAULT_SEQUENCE_LENGTH
