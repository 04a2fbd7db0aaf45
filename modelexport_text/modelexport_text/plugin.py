"""Text hooks: modality declaration, shape naming, tokenizer copying, wrapping and pipeline routing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelexport_core import Modality, ModelExportError, hookimpl

TEXT = Modality(
    name="text",
    tasks=(
        "feature-extraction",
        "fill-mask",
        "question-answering",
        "text-classification",
        "token-classification",
        "zero-shot-classification",
    ),
    input_names=("input_ids",),
)
DEFAULT_SEQUENCE_LENGTH = 128


@hookimpl
def register_modalities() -> list[Modality]:
    return [TEXT]


@hookimpl
def detect_shapes(modality: str, input_shapes: dict[str, list[int | None]]) -> dict[str, int | None] | None:
    if modality != TEXT.name or "input_ids" not in input_shapes:
        return None
    batch_size, sequence_length = (input_shapes["input_ids"] + [None, None])[:2]
    return {"batch_size": batch_size, "sequence_length": sequence_length}


@hookimpl
def default_shapes(modality: str, package_dir: Path) -> dict[str, int] | None:
    return {"sequence_length": DEFAULT_SEQUENCE_LENGTH} if modality == TEXT.name else None


@hookimpl
def load_processor(modality: str, processor_dir: str) -> Any | None:
    if modality != TEXT.name:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(processor_dir)


@hookimpl
def copy_configs(modality: str, source: str, out_dir: Path, hub_kwargs: dict[str, Any]) -> list[str] | None:
    if modality != TEXT.name:
        return None
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **hub_kwargs)
    except (OSError, ValueError, TypeError) as err:
        raise ModelExportError(
            f"{source} has no usable tokenizer files: save the tokenizer beside the model (tokenizer.save_pretrained)"
        ) from err
    return [Path(name).name for name in tokenizer.save_pretrained(out_dir) if Path(name).is_file()]


@hookimpl
def pipeline_class(task: str, modality: str) -> type | None:
    if modality != TEXT.name or task != "feature-extraction":
        return None
    from .pipelines import FixedLengthFeatureExtractionPipeline

    return FixedLengthFeatureExtractionPipeline


@hookimpl
def wrap_processor(modality: str, processor: Any, shapes: dict[str, int]) -> Any | None:
    if modality != TEXT.name:
        return None
    from transformers import PreTrainedTokenizerBase

    from .tokenizer import ONNXTokenizer

    if not isinstance(processor, PreTrainedTokenizerBase):
        return None
    return ONNXTokenizer(processor, shapes["batch_size"], shapes["sequence_length"])


@hookimpl
def sample_inputs(modality: str, sequence_length: int) -> dict[str, list[Any]] | None:
    if modality != TEXT.name:
        return None
    from .samples import sample_texts

    return sample_texts(sequence_length)


@hookimpl
def benchmark_corpus(modality: str) -> list[Any] | None:
    if modality != TEXT.name:
        return None
    from .corpus import corpus_sentences

    return list(corpus_sentences())
