"""The accuracy gate of an int8 export: the int8 graph against the fp32 one, on validation and real inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from .errors import ModelExportError
from .package import io_signature
from .plugins import hook
from .quantize import Feeds, quantize_graph, quantize_selectively
from .quiet import quieted
from .validate import signature_inputs

DEFAULT_MIN_AGREEMENT = 0.99
CALIBRATION_SIZE = 32  # the first realistic inputs measure each module's sensitivity ...
HELD_OUT_SIZE = 96  # ... the next ones, held out from that, decide whether int8 agrees with fp32


def _run(model: onnx.ModelProto, feeds: Feeds) -> list[np.ndarray]:
    """The first output of every feed."""
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [session.run(None, feed)[0] for feed in feeds]


def realistic_feeds(model: onnx.ModelProto, modality: str, processor_dir: str) -> tuple[Feeds, list[int]]:
    """The modality's benchmark corpus, processed to the graph's fixed shapes: feeds and real rows of each."""
    corpus = hook().benchmark_corpus(modality=modality)
    if not corpus:
        return [], []
    signature = io_signature(model)
    shapes = hook().detect_shapes(modality=modality, input_shapes={i["name"]: i["shape"] for i in signature["inputs"]})
    processor = hook().wrap_processor(
        modality=modality, processor=hook().load_processor(modality=modality, processor_dir=processor_dir), shapes=shapes
    )
    names, batch = {i["name"] for i in signature["inputs"]}, shapes["batch_size"]
    feeds, rows = [], []
    corpus = corpus[: CALIBRATION_SIZE + HELD_OUT_SIZE]
    for start in range(0, len(corpus), batch):
        with quieted():  # realistic texts longer than the fixed length are truncated, as at inference
            encoded = processor(list(corpus[start : start + batch]), return_tensors="np")
        real = min(batch, len(corpus) - start)
        feeds.append({k: _pad_rows(np.asarray(v), batch) for k, v in encoded.items() if k in names})
        rows.append(real)
    return feeds, rows


def _pad_rows(array: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([array, np.repeat(array[-1:], batch - len(array), axis=0)]) if len(array) < batch else array


def agreement(task: str, reference: list[np.ndarray], candidate: list[np.ndarray], feeds: Feeds, rows: list[int]) -> dict[str, Any]:
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
    """int8 versions of every graph (buckets alike), with the most sensitive modules kept fp32 until the largest
    graph agrees with fp32 on validation and held-out realistic inputs; a user error when it never does."""
    largest = next(iter(models.values()))
    real, real_rows = realistic_feeds(largest, modality, processor_dir)
    calibration = real[: -(-CALIBRATION_SIZE // real_rows[0])] if real else []
    validation = [signature_inputs(io_signature(largest))]
    feeds = validation + real[len(calibration) :]
    rows = [len(next(iter(validation[0].values())))] + real_rows[len(calibration) :]
    reference = _run(largest, feeds)
    results: dict[str, Any] = {}

    def passes(quantized: onnx.ModelProto) -> bool:
        results.update(agreement(task, reference, _run(quantized, feeds), feeds, rows))
        return results["value"] >= min_agreement

    quantized, kept, sensitivity = quantize_selectively(largest, calibration or validation, passes)
    report = {
        "method": "dynamic int8 (per-channel int8 weights, uint8 activations), onnxruntime",
        **results,
        "min_agreement": min_agreement,
        "fp32_modules": kept,
        "most_sensitive": {path: round(value, 5) for path, value in sorted(sensitivity.items(), key=lambda kv: -kv[1])[:5]},
    }
    if results["value"] < min_agreement:
        raise ModelExportError(
            f"int8 {results['metric']} {results['value']:.6f} is below --min-agreement {min_agreement} even with "
            f"{len(kept)} modules kept fp32: export without --quantize, or lower --min-agreement"
        )
    names = list(models)
    return {names[0]: quantized, **{name: quantize_graph(models[name], kept) for name in names[1:]}}, report
