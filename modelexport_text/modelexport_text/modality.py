"""`TextModality`: what the text plugin registers; its methods carry everything text-specific."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from modelexport_core import Modality, ModelExportError, copy_pretrained

DEFAULT_SEQUENCE_LENGTH = 128


class TextModality(Modality):
    """Texts through a tokenizer: `input_ids` [batch, sequence_length]; buckets and sorting by token count."""

    name = "text"
    tasks = (
        "feature-extraction",
        "fill-mask",
        "question-answering",
        "text-classification",
        "token-classification",
        "zero-shot-classification",
    )
    input_names = ("input_ids",)
    dim_names = ("batch_size", "sequence_length")
    length_dim = "sequence_length"
    mask_input = "attention_mask"
    task_aliases: ClassVar[Mapping[str, str]] = {
        "zero-shot-classification": "text-classification",
        "sentiment-analysis": "text-classification",
        "ner": "token-classification",
    }
    embedding_tasks = ("feature-extraction",)

    def name_dims(self, input_shapes: Mapping[str, Sequence[int | None]]) -> dict[str, int | None]:
        batch_size, sequence_length = [*input_shapes.get("input_ids", ()), None, None][:2]
        return {"batch_size": batch_size, "sequence_length": sequence_length}

    def default_dims(self, package_dir: Path) -> dict[str, int]:
        return {"sequence_length": DEFAULT_SEQUENCE_LENGTH}

    def fit_dims(self, dims: dict[str, int], config: Any, explicit: set[str]) -> dict[str, int]:
        """Keep the sequence length within the model's position embeddings: cap a default, refuse a request."""
        limit = getattr(config, "max_position_embeddings", None)
        if not isinstance(limit, int) or dims.get("sequence_length", 0) <= limit:
            return dims
        if "sequence_length" in explicit:
            raise ModelExportError(
                f"--sequence-length {dims['sequence_length']} exceeds the model's max_position_embeddings ({limit})"
            )
        return {**dims, "sequence_length": limit}

    def save_preprocessor(self, source: str, out_dir: Path, hub_kwargs: Mapping[str, Any]) -> None:
        from transformers import AutoTokenizer

        copy_pretrained(AutoTokenizer.from_pretrained, source, out_dir, hub_kwargs, "tokenizer")

    def load_processor(self, directory: str, trust_remote_code: bool = False) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(directory, trust_remote_code=trust_remote_code)

    def wrap_processor(self, processor: Any, dims: Mapping[str, int]) -> Any | None:
        from transformers import PreTrainedTokenizerBase

        from modelexport_text.tokenizer import ONNXTokenizer

        if not isinstance(processor, PreTrainedTokenizerBase):
            return None
        return ONNXTokenizer(processor, dims["batch_size"], dims["sequence_length"])

    def pipeline_class(self, task: str) -> type | None:
        if task != "feature-extraction":
            return None
        from modelexport_text.pipelines import FixedLengthFeatureExtractionPipeline

        return FixedLengthFeatureExtractionPipeline

    def input_lengths(self, items: Sequence[Any], processor: Any) -> list[int] | None:
        """Token counts, untruncated, from one batched call of the plain tokenizer; None unless all are texts."""
        if not all(isinstance(item, str) for item in items):
            return None
        from modelexport_text.tokenizer import token_counts

        return token_counts(processor, list(items))

    def sample_inputs(self, dims: Mapping[str, int]) -> dict[str, list[Any]]:
        from modelexport_text.samples import sample_texts

        return sample_texts(dims.get("sequence_length") or DEFAULT_SEQUENCE_LENGTH)

    def corpus(self) -> list[Any]:
        from modelexport_text.corpus import corpus_sentences

        return list(corpus_sentences())
