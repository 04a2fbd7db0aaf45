"""Pipeline classes that keep the stock behaviour on fixed-length inputs, and run a list of texts batch by batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from transformers import FeatureExtractionPipeline, TextClassificationPipeline

from modelexport_core.errors import ModelExportError
from modelexport_core.serve.sorting import LengthSortedCalls, length_order
from modelexport_text.tokenizer import encoded_once, padded_rows

SENTENCE_EMBEDDING_TASK = "sentence-embeddings"
SENTENCE_EMBEDDING_FILE = "sentence_embedding.json"  # {"pooling": "mean", "normalize": true}, from modules.json
POOLINGS = ("mean", "cls", "max")


class BatchedTexts:
    """Pipeline mixin: a call on a list of texts, with no keywords but `batch_keywords`, runs whole batches: the
    texts tokenized in one call of the fast tokenizer's batch API (shortest first when the pipeline sorts by
    length: the one call measures them), each batch padded in numpy (to its bucket, or to its longest text for a
    PyTorch model), one model call per batch, and `batch_answers` on the batch's arrays, in the caller's order.
    Any other call takes the stock per-item path, with the same answers."""

    batch_keywords: ClassVar[frozenset[str]] = frozenset({"batch_size"})

    def sorts_itself(self, inputs: Any = None, *args: Any, **kwargs: Any) -> bool:
        """Whether the call takes the batched path (which sorts by length itself)."""
        texts = isinstance(inputs, list) and inputs and all(isinstance(text, str) for text in inputs)
        return bool(texts) and not args and not set(kwargs) - self.batch_keywords

    def __call__(self, inputs: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not self.sorts_itself(inputs, *args, **kwargs):
            return super().__call__(inputs, *args, **kwargs)  # type: ignore[misc]
        given = {key: value for key, value in kwargs.items() if key != "batch_size"}
        params = {**self._postprocess_params, **self._sanitize_parameters(**given)[2]}
        size = kwargs.get("batch_size") or self._batch_size or 1
        tokenize = {"truncation": True, **self._preprocess_params}
        encoding = encoded_once(self.tokenizer, inputs, tokenize)
        lengths = list(map(len, encoding["input_ids"])) if isinstance(self, LengthSortedCalls) else None
        order = length_order(lengths, len(inputs))
        answers: list[Any] = [None] * len(inputs)
        for start in range(0, len(inputs), size):
            rows = order[start : start + size]
            encoded = padded_rows(self.tokenizer, encoding, rows, "pt")
            if encoded is None:
                encoded = self.tokenizer([inputs[i] for i in rows], return_tensors="pt", padding=True, **tokenize)
            outputs = self._batch_outputs(encoded)
            for row, answer in zip(rows, self.batch_answers(outputs, encoded, params), strict=True):
                answers[row] = answer
        return answers

    def _batch_outputs(self, encoded: Any) -> Any:
        import torch

        with torch.no_grad():
            return self.model(**encoded)

    def batch_answers(self, outputs: Any, encoded: Any, params: dict[str, Any]) -> list[Any]:
        raise NotImplementedError


class BatchedTextClassificationPipeline(BatchedTexts, TextClassificationPipeline):
    """Text classification over whole batches; each row's answer from the stock post-processing of its logits."""

    def batch_answers(self, outputs: Any, encoded: Any, params: dict[str, Any]) -> list[Any]:
        logits = outputs["logits"]
        return [self.postprocess({"logits": logits[row : row + 1]}, **params) for row in range(len(logits))]


class FixedLengthFeatureExtractionPipeline(BatchedTexts, FeatureExtractionPipeline):
    """Feature extraction that returns the vectors of the real tokens only, never of fixed-length padding; with
    `pooling` ("mean", "cls" or "max", over the real tokens; `normalize` for unit length), one vector per text,
    pooled on the batch's arrays."""

    batch_keywords = frozenset({"batch_size", "pooling", "normalize"})

    def _sanitize_parameters(self, pooling: str | None = None, normalize: bool | None = None, **kwargs: Any) -> Any:
        if pooling is not None and pooling not in POOLINGS:
            raise ModelExportError(f"pooling takes {', '.join(POOLINGS)}, not {pooling!r}")
        preprocess, forward, postprocess = super()._sanitize_parameters(**kwargs)
        given = {"pooling": pooling, "normalize": normalize}
        return preprocess, forward, {**postprocess, **{k: v for k, v in given.items() if v is not None}}

    def batch_answers(self, outputs: Any, encoded: Any, params: dict[str, Any]) -> list[Any]:
        features, mask = outputs[0], encoded["attention_mask"]
        if params.get("pooling"):
            return pooled(features, mask, params["pooling"], params.get("normalize", False)).tolist()
        return [row[: int(real)].unsqueeze(0).tolist() for row, real in zip(features, mask.sum(1), strict=True)]

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        outputs = self.model(**model_inputs)
        return {"features": outputs[0], "attention_mask": model_inputs["attention_mask"]}

    def postprocess(
        self,
        model_outputs: dict[str, Any],
        return_tensors: bool = False,
        pooling: str | None = None,
        normalize: bool = False,
    ) -> Any:
        features, mask = model_outputs["features"], model_outputs["attention_mask"]
        if pooling:
            vector = pooled(features, mask, pooling, normalize)[0]
            if return_tensors:
                import torch

                return torch.from_numpy(vector)
            return vector.tolist()
        features = features[:, : int(mask[0].sum())]  # right padding
        return features if return_tensors else features.tolist()


class SentenceEmbeddingPipeline(FixedLengthFeatureExtractionPipeline):
    """One vector per text, pooled and normalized as the model's sentence-transformers modules ask (recorded in
    a package as `sentence_embedding.json`; a PyTorch model's own `modules.json`), else mean pooling
    unnormalized (sentence-transformers' default); `pooling=` and `normalize=` override, at creation or per call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        recorded = {"pooling": "mean", "normalize": False, **_recorded_pooling(self.model)}
        self._postprocess_params = {**recorded, **self._postprocess_params}


def pooled(features: Any, mask: Any, pooling: str, normalize: bool) -> np.ndarray:
    """[batch, tokens, dim] features over their real tokens (`mask`) -> [batch, dim] vectors. numpy, not torch:
    torch's parallel ops leave its OpenMP threads spinning, and they take the cores of the next onnxruntime run."""
    features, real = np.asarray(features), np.asarray(mask)[..., None].astype(np.float32)
    if pooling == "cls":
        vectors = features[:, 0]
    elif pooling == "max":
        vectors = np.where(real > 0, features, -np.inf).max(axis=1)
    else:
        vectors = (features * real).sum(axis=1) / np.maximum(real.sum(axis=1), 1e-9)
    if normalize:
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    return vectors.astype(features.dtype, copy=False)


def _recorded_pooling(model: Any) -> dict[str, Any]:
    """A package's sentence_embedding.json (beside an ORTModel's graph), or a PyTorch model's modules.json."""
    from modelexport_text.modality import source_sentence_embedding

    graph = getattr(model, "path", None)
    if graph is not None:
        recorded = Path(str(graph)).parent / SENTENCE_EMBEDDING_FILE
        return json.loads(recorded.read_text()) if recorded.is_file() else {}
    source = getattr(model, "name_or_path", "")
    return (source_sentence_embedding(source, {}) or {}) if source else {}


def sentence_embedding_config(modules: list[dict[str, Any]], read: Any) -> dict[str, Any] | None:
    """The pooling and normalization a sentence-transformers `modules.json` asks for (`read(path)` gives a
    module's config.json as a dict), or None when it has no Pooling module."""
    types = {module.get("type", "").rsplit(".", 1)[-1]: module for module in modules}
    if "Pooling" not in types:
        return None
    config = read(f"{types['Pooling'].get('path', '')}/config.json")
    modes = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens", "mean": "pooling_mode_mean_tokens"}
    pooling = next((name for name, key in modes.items() if config.get(key)), "mean")
    return {"pooling": pooling, "normalize": "Normalize" in types}


def register_sentence_embeddings() -> None:
    """Teach transformers' `pipeline()` the task, once."""
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    if SENTENCE_EMBEDDING_TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(
            SENTENCE_EMBEDDING_TASK, pipeline_class=SentenceEmbeddingPipeline, pt_model=AutoModel
        )
