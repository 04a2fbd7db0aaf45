"""The accuracy gate of an int8 export: the int8 graph against the fp32 one, on validation and real inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from .errors import ModelExportError
from .package import io_signature
from .plugins import hook
from .quantize import Batch, Feeds, first_outputs, quantize_graph, select_fp32_modules
from .quiet import quieted
from .sorting import length_order
from .validate import signature_inputs

DEFAULT_MIN_AGREEMENT = 0.99
CALIBRATION_SIZE = 32  # the first corpus inputs measure each module's sensitivity; the gate runs the whole corpus


def realistic_feeds(
    model: onnx.ModelProto, modality: str, processor_dir: str, items: list[Any]
) -> tuple[Feeds, list[int]]:
    """`items` (from the modality's benchmark corpus) processed to the graph's fixed shapes: feeds and real rows."""
    signature = io_signature(model)
    shapes = hook().detect_shapes(modality=modality, input_shapes={i["name"]: i["shape"] for i in signature["inputs"]})
    processor = hook().wrap_processor(
        modality=modality,
        processor=hook().load_processor(modality=modality, processor_dir=processor_dir),
        shapes=shapes,
    )
    names, batch = {i["name"] for i in signature["inputs"]}, shapes["batch_size"]
    feeds, rows = [], []
    for start in range(0, len(items), batch):
        with quieted():  # realistic texts longer than the fixed length are truncated, as at inference
            encoded = processor(list(items[start : start + batch]), return_tensors="np")
        feeds.append({k: _pad_rows(np.asarray(v), batch) for k, v in encoded.items() if k in names})
        rows.append(min(batch, len(items) - start))
    return feeds, rows


def in_buckets(feeds: Feeds, models: dict[str, onnx.ModelProto]) -> list[Batch]:
    """Each feed of the largest graph (the first) on the smallest graph holding its real tokens, inputs cut to
    that graph's shapes, as create_pipeline serves them."""
    shapes = _input_shapes(models)
    batches = []
    for feed in feeds:
        name = _graph_holding(_real_length(feed), shapes)
        batches.append((name, _cut(feed, shapes[name])))
    return batches


def on_one_graph(feeds: Feeds, models: dict[str, onnx.ModelProto]) -> tuple[str, Feeds]:
    """The smallest graph holding the real tokens of every feed, and the feeds cut to its shapes."""
    shapes = _input_shapes(models)
    lengths = [_real_length(feed) for feed in feeds]
    name = _graph_holding(None if None in lengths else max(lengths), shapes)  # type: ignore[type-var]
    return name, [_cut(feed, shapes[name]) for feed in feeds]


def _input_shapes(models: dict[str, onnx.ModelProto]) -> dict[str, dict[str, list[int]]]:
    return {name: {i["name"]: i["shape"] for i in io_signature(model)["inputs"]} for name, model in models.items()}


def _real_length(feed: dict[str, np.ndarray]) -> int | None:
    """The last real token's position + 1, from the attention mask (None without a 2-D one)."""
    mask = feed.get("attention_mask")
    return int(np.flatnonzero(mask.any(axis=0))[-1]) + 1 if mask is not None and mask.ndim == 2 else None


def _graph_holding(needed: int | None, shapes: dict[str, dict[str, list[int]]]) -> str:
    """The graph of the smallest sequence length holding `needed` tokens; the largest (first) otherwise."""
    by_length = sorted(shapes, key=lambda name: shapes[name].get("attention_mask", [0, 0])[1])
    fits = [name for name in by_length if needed and shapes[name]["attention_mask"][1] >= needed]
    return fits[0] if fits else next(iter(shapes))


def _cut(feed: dict[str, np.ndarray], shapes: dict[str, list[int]]) -> dict[str, np.ndarray]:
    return {k: v[tuple(slice(0, dim) for dim in shapes[k])] for k, v in feed.items()}


def _pad_rows(array: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([array, np.repeat(array[-1:], batch - len(array), axis=0)]) if len(array) < batch else array


def agreement(
    task: str, reference: list[np.ndarray], candidate: list[np.ndarray], feeds: Feeds, rows: list[int]
) -> dict[str, Any]:
    """Cosine of mean-pooled vectors (embeddings) or top-1 agreement (classifiers), worst case, and max deviation."""
    scores, deviation = [], 0.0
    for ref, out, feed, real in zip(reference, candidate, feeds, rows):
        ref, out = ref[:real].astype(np.float64), out[:real].astype(np.float64)
        deviation = max(deviation, float(np.abs(ref - out).max()))
        mask = feed.get("attention_mask")
        mask = mask[:real].astype(np.float64) if mask is not None and ref.ndim == 3 else None
        if task == "feature-extraction" and mask is not None:
            a, b = ((x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True) for x in (ref, out))
            scores.extend((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
        else:
            same = ref.argmax(-1) == out.argmax(-1)
            scores.extend(same[mask.astype(bool)] if mask is not None else same.reshape(-1))
    metric = "cosine" if task == "feature-extraction" else "top1_agreement"
    value = float(np.min(scores)) if metric == "cosine" else float(np.mean(scores))
    return {"metric": metric, "value": round(value, 6), "max_deviation": round(deviation, 6), "inputs": len(scores)}


def quantize_with_gate(
    models: dict[str, onnx.ModelProto], task: str, modality: str, processor_dir: str, min_agreement: float
) -> tuple[dict[str, onnx.ModelProto], dict[str, Any]]:
    """int8 versions of every graph (buckets alike), with the most sensitive modules kept fp32 until int8 agrees with
    fp32 on the validation inputs and on the whole benchmark corpus, sorted and bucketed as create_pipeline runs it
    (models: the largest graph first); a user error when it never does."""
    largest = next(iter(models))
    corpus = hook().benchmark_corpus(modality=modality) or []
    calibration, _ = realistic_feeds(models[largest], modality, processor_dir, corpus[:CALIBRATION_SIZE])
    tokenizer = hook().load_processor(modality=modality, processor_dir=processor_dir) if corpus else None
    ordered, rows = realistic_feeds(
        models[largest], modality, processor_dir, [corpus[i] for i in length_order(corpus, tokenizer)]
    )
    validation = signature_inputs(io_signature(models[largest]))
    batches = [(largest, validation), *in_buckets(ordered, models)]
    feeds, rows = [feed for _, feed in batches], [len(next(iter(validation.values()))), *rows]
    reference = first_outputs(models, batches)
    trials: dict[tuple[str, ...], tuple[dict[str, onnx.ModelProto], dict[str, Any]]] = {}

    def accepts(keep_fp32: list[str]) -> bool:
        quantized = {name: quantize_graph(models[name], keep_fp32) for name in dict.fromkeys(n for n, _ in batches)}
        trials[tuple(keep_fp32)] = quantized, agreement(task, reference, first_outputs(quantized, batches), feeds, rows)
        return trials[tuple(keep_fp32)][1]["value"] >= min_agreement

    graph, calibration = on_one_graph(calibration or [validation], models)
    kept, sensitivity = select_fp32_modules(models[graph], calibration, accepts)
    quantized, results = trials[tuple(kept)]
    report = {
        "method": "dynamic int8 (per-channel int8 weights, uint8 activations), onnxruntime",
        **results,
        "min_agreement": min_agreement,
        "fp32_modules": kept,
        "most_sensitive": {
            path: round(value, 5) for path, value in sorted(sensitivity.items(), key=lambda kv: -kv[1])[:5]
        },
    }
    if results["value"] < min_agreement:
        raise ModelExportError(
            f"int8 {results['metric']} {results['value']:.6f} is below --min-agreement {min_agreement} even with "
            f"{len(kept)} modules kept fp32: export without --quantize, or lower --min-agreement"
        )
    return {name: quantized.get(name) or quantize_graph(models[name], kept) for name in models}, report
