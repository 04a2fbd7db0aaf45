"""`TextModality`: what the text plugin registers; its methods carry everything text-specific."""

from __future__ import annotations

import json
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
        "sentence-embeddings": "feature-extraction",
    }
    embedding_tasks = ("feature-extraction", "sentence-embeddings")

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
        """The tokenizer files, and for a sentence-transformers model the pooling and normalization its
        `modules.json` asks for (`sentence_embedding.json`)."""
        from transformers import AutoTokenizer

        from modelexport_text.pipelines import SENTENCE_EMBEDDING_FILE

        copy_pretrained(AutoTokenizer.from_pretrained, source, out_dir, hub_kwargs, "tokenizer")
        found = source_sentence_embedding(source, hub_kwargs)
        if found:
            (out_dir / SENTENCE_EMBEDDING_FILE).write_text(json.dumps(found))

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
        from modelexport_text import pipelines

        if task == pipelines.SENTENCE_EMBEDDING_TASK:
            pipelines.register_sentence_embeddings()
            return pipelines.SentenceEmbeddingPipeline
        batched = {
            "feature-extraction": pipelines.FixedLengthFeatureExtractionPipeline,
            "text-classification": pipelines.BatchedTextClassificationPipeline,
            "sentiment-analysis": pipelines.BatchedTextClassificationPipeline,
        }
        return batched.get(task)

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


def source_sentence_embedding(source: str, hub_kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pooling and normalization the model's sentence-transformers `modules.json` asks for, None without."""
    from modelexport_text.pipelines import sentence_embedding_config

    modules = _source_json(source, "modules.json", hub_kwargs)
    return sentence_embedding_config(modules, lambda path: _source_json(source, path, hub_kwargs)) if modules else None


def _source_json(source: str, name: str, hub_kwargs: Mapping[str, Any]) -> Any:
    """A JSON file of the model's directory or Hub repo (`name` relative to it), or None when it has none."""
    from transformers.utils import cached_file

    kwargs = {k: v for k, v in hub_kwargs.items() if k in ("revision", "token", "cache_dir")}
    path = cached_file(source, name.lstrip("/"), _raise_exceptions_for_missing_entries=False, **kwargs)
    return json.loads(Path(path).read_text()) if path else None
