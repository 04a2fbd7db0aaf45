"""The multimodal modalities, composed from the text and vision plugins' public classes.

- `ImageTextModality` ("multimodal"): image + text models (CLIP, zero-shot image classification), processed by
  `ONNXProcessor`; images and candidate texts have fixed batches of their own.
- `DocumentModality` ("document"): text + layout models (LayoutLM v1, document question answering with
  caller-given words and boxes), processed as text by `ONNXTokenizer`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from modelexport_core import Modality, copy_pretrained
from modelexport_text import TextModality
from modelexport_text.modality import DEFAULT_SEQUENCE_LENGTH
from modelexport_vision import VisionModality

DEFAULT_TEXT_BATCH_SIZE = 1
SAMPLE_LABELS = ("cat", "dog", "bird", "car")  # benchmark candidate labels


class ImageTextModality(Modality):
    """Images and texts: `pixel_values` counted by `batch_size`, `input_ids` by `text_batch_size`."""

    name = "multimodal"
    tasks = ("zero-shot-image-classification",)
    input_names = ("input_ids", "pixel_values")
    dim_names = (*VisionModality.dim_names, "text_batch_size", "sequence_length")
    input_column = "image"
    mask_input = "attention_mask"

    def __init__(self) -> None:
        self.text, self.vision = TextModality(), VisionModality()

    def name_dims(self, input_shapes: Mapping[str, Sequence[int | None]]) -> dict[str, int | None]:
        words = self.text.name_dims(input_shapes)
        images = self.vision.name_dims(input_shapes)
        return {**images, "text_batch_size": words["batch_size"], "sequence_length": words["sequence_length"]}

    def default_dims(self, package_dir: Path) -> dict[str, int]:
        images = self.vision.default_dims(package_dir)
        return {
            **images,
            "num_channels": _read_config(package_dir)
            .get("vision_config", {})
            .get("num_channels", images["num_channels"]),
            "text_batch_size": DEFAULT_TEXT_BATCH_SIZE,
            "sequence_length": min(DEFAULT_SEQUENCE_LENGTH, _text_max_length(package_dir)),
        }

    def save_preprocessor(self, source: str, out_dir: Path, hub_kwargs: Mapping[str, Any]) -> None:
        from transformers import AutoProcessor

        copy_pretrained(AutoProcessor.from_pretrained, source, out_dir, hub_kwargs, "processor")

    def load_processor(self, directory: str, trust_remote_code: bool = False) -> Any:
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(directory, trust_remote_code=trust_remote_code)

    def wrap_processor(self, processor: Any, dims: Mapping[str, int]) -> Any | None:
        from transformers import ProcessorMixin

        from modelexport_multimodal.processor import ONNXProcessor

        return ONNXProcessor(processor, dict(dims)) if isinstance(processor, ProcessorMixin) else None

    def read_input(self, value: str) -> Any:
        return self.vision.read_input(value)

    def sample_inputs(self, dims: Mapping[str, int]) -> dict[str, list[Any]]:
        return self.vision.sample_inputs(dims)

    def benchmark_kwargs(self, task: str) -> dict[str, dict[str, Any]]:
        """Zero-shot image classification runs with candidate labels; the raw session gets the pipeline's sentences."""
        if task != "zero-shot-image-classification":
            return {}
        import inspect

        from transformers import ZeroShotImageClassificationPipeline

        template = inspect.signature(ZeroShotImageClassificationPipeline.preprocess).parameters["hypothesis_template"]
        return {
            "pipeline": {"candidate_labels": list(SAMPLE_LABELS)},
            "processor": {"text": [template.default.format(label) for label in SAMPLE_LABELS]},
        }


class DocumentModality(TextModality):
    """Texts with word boxes (`input_ids` + `bbox`): text in every respect but its task and pipeline."""

    name = "document"
    tasks = ("document-question-answering",)
    input_names = ("input_ids", "bbox")
    task_aliases: ClassVar[Mapping[str, str]] = {}
    embedding_tasks = ()

    def pipeline_class(self, task: str) -> type | None:
        if task != "document-question-answering":
            return None
        from modelexport_multimodal.pipelines import FixedLengthDocumentQuestionAnsweringPipeline

        return FixedLengthDocumentQuestionAnsweringPipeline

    def sample_inputs(self, dims: Mapping[str, int]) -> dict[str, list[Any]]:
        return {}  # a document is words with boxes: no plain texts to time

    def corpus(self) -> list[Any]:
        return []


def _read_config(package_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(package_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def _text_max_length(package_dir: Path) -> int:
    limit = (_read_config(package_dir).get("text_config") or {}).get("max_position_embeddings")
    return limit if isinstance(limit, int) else DEFAULT_SEQUENCE_LENGTH
