"""The accuracy gate of a lower-precision export (int8, w8a16, w8a8, fp16): the converted graphs against the float
ones, on validation inputs and on the modality's corpus held out from calibration, run the way create_pipeline
serves it (sorted by length, each batch on its bucket)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from modelexport_core.errors import ModelExportError
from modelexport_core.package.axes import padded_rows
from modelexport_core.package.layout import MODEL_FILE, io_signature
from modelexport_core.package.validate import signature_inputs
from modelexport_core.plugins.modality import Modality
from modelexport_core.quantize.precisions import Precision
from modelexport_core.quantize.search import Batch, Feeds, first_outputs, select_kept_modules
from modelexport_core.quiet import quieted
from modelexport_core.serve.buckets import Buckets
from modelexport_core.serve.sorting import length_order

DEFAULT_MIN_AGREEMENT = 0.99
CALIBRATION_SIZE = 32  # the first corpus inputs calibrate and rank the modules; the gate runs on the rest
# (on half of a smaller corpus: vision's 32 images calibrate on 16 and are judged on the other 16)


def realistic_feeds(model: onnx.ModelProto, processor: Any, items: list[Any]) -> tuple[Feeds, list[int]]:
    """`items` through the fixed-shape `processor`, in batches of the graph's fixed batch: feeds and real rows."""
    names = {i["name"] for i in io_signature(model)["inputs"]}
    batch = processor.batch_size
    feeds, rows = [], []
    for start in range(0, len(items), batch):
        with quieted():  # realistic inputs longer than the fixed size are truncated, as at inference
            encoded = processor(list(items[start : start + batch]), return_tensors="np")
        feeds.append({k: padded_rows(np.asarray(v), batch) for k, v in encoded.items() if k in names})
        rows.append(min(batch, len(items) - start))
    return feeds, rows


def graph_buckets(models: dict[str, onnx.ModelProto], modality: Modality) -> Buckets:
    """The graphs of model.onnx's batch size as create_pipeline serves them: by their size along the modality's
    length dim (the gate's feeds are batches of that size)."""
    named = {
        name: modality.name_dims({i["name"]: i["shape"] for i in sig["inputs"]})
        for name, sig in ((name, io_signature(model)) for name, model in models.items())
    }
    batch = named[MODEL_FILE].get("batch_size")
    signatures = {name: io_signature(models[name]) for name in named if named[name].get("batch_size") == batch}
    lengths = {name: named[name].get(modality.length_dim or "") or 0 for name in signatures}
    return Buckets(lengths, signatures, modality.mask_input)


def in_buckets(feeds: Feeds, buckets: Buckets) -> list[Batch]:
    """Each feed of the largest graph on the smallest graph holding it, cut to that graph's shapes."""
    graphs = [buckets.holding(feed) for feed in feeds]
    return [(graph, buckets.cut(feed, graph)) for graph, feed in zip(graphs, feeds, strict=True)]


def on_one_graph(feeds: Feeds, buckets: Buckets) -> tuple[str, Feeds]:
    """The smallest graph holding every feed, and the feeds cut to its shapes."""
    graph = max(map(buckets.holding, feeds), key=buckets.lengths.__getitem__)
    return graph, [buckets.cut(feed, graph) for feed in feeds]


def agreement(
    task: str,
    modality: Modality,
    reference: list[np.ndarray],
    candidate: list[np.ndarray],
    feeds: Feeds,
    rows: list[int],
) -> dict[str, Any]:
    """Worst cosine of pooled vectors (the modality's embedding tasks) or mean top-1 agreement (classifiers, per real
    position for position-wise outputs), and the largest deviation."""
    embedding = task in modality.embedding_tasks
    scores, deviation = [], 0.0
    for ref, out, feed, real in zip(reference, candidate, feeds, rows, strict=True):
        ref, out = ref[:real].astype(np.float64), out[:real].astype(np.float64)
        deviation = max(deviation, float(np.abs(ref - out).max()))
        mask = _real_positions(feed, modality, ref)
        if embedding:
            a, b = (_pooled(x, mask) for x in (ref, out))
            scores.extend((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
        else:
            same = ref.argmax(-1) == out.argmax(-1)
            scores.extend(same[mask.astype(bool)] if mask is not None else same.reshape(-1))
    metric = "cosine" if embedding else "top1_agreement"
    value = float(np.min(scores)) if embedding else float(np.mean(scores))
    mean = {"mean": round(float(np.mean(scores)), 6)} if embedding else {}
    return {
        "metric": metric,
        "value": round(value, 6),
        **mean,
        "max_deviation": round(deviation, 6),
        "inputs": len(scores),
    }


def _real_positions(feed: dict[str, np.ndarray], modality: Modality, output: np.ndarray) -> np.ndarray | None:
    """The real positions of a [batch, length, ...] output: the modality's mask input, where it has that length."""
    mask = feed.get(modality.mask_input) if modality.mask_input else None
    if mask is None or output.ndim < 3 or mask.ndim != 2 or mask.shape[1] != output.shape[1]:
        return None
    return mask[: len(output)].astype(np.float64)


def _pooled(vectors: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """One vector per row: as it is, or the mean over its (real) positions."""
    if vectors.ndim == 2:
        return vectors
    vectors = vectors.reshape(*vectors.shape[:2], -1)
    if mask is None:
        return vectors.mean(1)
    return (vectors * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)


def describe_quantization(report: dict[str, Any]) -> str:
    """One line for the export's progress: the gate's value, its minimum, and the modules kept."""
    kept = ", ".join(report["kept_modules"]) or "none"
    return (
        f"{report['precision']} {report['metric']} {report['value']:.4f} (minimum {report['min_agreement']}) on "
        f"{report['inputs']} held-out outputs, max deviation {report['max_deviation']:.4f}; "
        f"modules kept at {report['kept_at']}: {kept}"
    )


def quantize_with_gate(
    models: dict[str, onnx.ModelProto],
    task: str,
    modality: Modality,
    processor_dir: str,
    min_agreement: float,
    precision: Precision,
    trust_remote_code: bool = False,
) -> tuple[dict[str, onnx.ModelProto], dict[str, Any]]:
    """Every graph (buckets alike) at `precision`, the most sensitive modules kept higher until it agrees with the
    float graphs on the validation inputs and on the modality's corpus held out from calibration, sorted and
    bucketed as create_pipeline runs it (models: the largest graph first); a user error when it never does."""
    buckets = graph_buckets(models, modality)
    loaded = modality.load_processor(processor_dir, trust_remote_code=trust_remote_code)
    processors = {name: _fixed_processor(model, modality, loaded) for name, model in models.items()}
    corpus = modality.corpus()
    if precision.calibrated and not corpus:
        raise ModelExportError(
            f"{precision.name} needs calibration inputs, and the {modality.name} plugin has no corpus "
            "(Modality.corpus): export without --quantize, or with --dtype fp16"
        )
    size = min(CALIBRATION_SIZE, len(corpus) // 2)
    calibration = {name: realistic_feeds(models[name], processors[name], corpus[:size])[0] for name in models}
    batches, rows = _held_out_batches(models, processors, corpus[size:], modality, buckets)
    feeds, reference = [feed for _, feed in batches], first_outputs(models, batches)
    prepared, preparation = precision.prepare(models, calibration) if precision.prepare else (models, {})
    trials: dict[tuple[str, ...], tuple[dict[str, onnx.ModelProto], dict[str, Any]]] = {}

    def accepts(kept: list[str]) -> bool:
        converted = {
            name: precision.convert(prepared[name], kept, calibration[name])
            for name in dict.fromkeys(n for n, _ in batches)
        }
        outputs = first_outputs(converted, batches)
        trials[tuple(kept)] = converted, agreement(task, modality, reference, outputs, feeds, rows)
        return _passes(trials[tuple(kept)][1], min_agreement, precision)

    graph, ranking = on_one_graph(calibration[next(iter(models))] or feeds[:1], buckets)
    kept, sensitivity = select_kept_modules(prepared[graph], ranking, accepts, precision.proxy)
    converted, results = trials[tuple(kept)]
    report = _gate_report(precision, results, min_agreement, (kept, sensitivity), preparation, size)
    if not _passes(results, min_agreement, precision):
        mean = f" (mean {results['mean']:.6f}, minimum {precision.min_mean})" if "mean" in results else ""
        raise ModelExportError(
            f"{precision.name} {results['metric']} {results['value']:.6f}{mean} is below --min-agreement "
            f"{min_agreement} even with {len(kept)} modules kept at {precision.kept_at}: export without it, or "
            "lower --min-agreement"
        )
    return {n: converted.get(n) or precision.convert(prepared[n], kept, calibration[n]) for n in models}, report


def _passes(results: dict[str, Any], min_agreement: float, precision: Precision) -> bool:
    """The worst agreement at least `min_agreement`, and the mean cosine at least the precision's own minimum."""
    return results["value"] >= min_agreement and results.get("mean", 1.0) >= precision.min_mean


def _held_out_batches(
    models: dict[str, onnx.ModelProto], processors: dict[str, Any], held_out: list[Any], modality: Modality,
    buckets: Buckets,
) -> tuple[list[Batch], list[int]]:  # fmt: skip
    """The largest graph's fixed-shape validation inputs, then the held-out corpus sorted by length, each batch on
    its bucket; and the real rows of each batch."""
    largest = next(iter(models))
    order = length_order(modality.input_lengths(held_out, processors[largest]), len(held_out))
    ordered, rows = realistic_feeds(models[largest], processors[largest], [held_out[i] for i in order])
    validation = signature_inputs(io_signature(models[largest]))
    return [(largest, validation), *in_buckets(ordered, buckets)], [len(next(iter(validation.values()))), *rows]


def _gate_report(
    precision: Precision,
    results: dict[str, Any],
    min_agreement: float,
    search: tuple[list[str], dict[str, float]],
    preparation: dict[str, int],
    calibration_size: int,
) -> dict[str, Any]:
    """What export_metadata.json records of the gate (`search`: the modules kept, every module's sensitivity)."""
    kept, sensitivity = search
    most_sensitive = sorted(sensitivity.items(), key=lambda kv: -kv[1])[:5]
    return {
        "precision": precision.name,
        "method": precision.method,
        **results,
        "min_agreement": min_agreement,
        "calibration_inputs": calibration_size if precision.calibrated or precision.prepare else 0,
        "kept_modules": kept,
        "kept_at": precision.kept_at,
        "most_sensitive": {path: round(value, 5) for path, value in most_sensitive},
        **({"prepared": preparation} if preparation else {}),
    }


def _fixed_processor(model: onnx.ModelProto, modality: Modality, processor: Any) -> Any:
    """The modality's loaded processor, wrapped for the graph's fixed dims."""
    dims = modality.name_dims({i["name"]: i["shape"] for i in io_signature(model)["inputs"]})
    return modality.wrap_processor(processor, dims)
