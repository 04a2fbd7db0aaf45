"""Activation smoothing before dynamic int8 (SmoothQuant): a few input channels of a matmul carry activations
tens of times larger than the rest, and one per-tensor activation scale then leaves the others a few levels.
Dividing those channels by s (a Mul before the matmul) and multiplying the weight's rows by s computes the same
product with activations int8 can hold. Each input's s is chosen on calibration inputs, or none at all."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from modelexport_core.quantize.search import Feeds
from modelexport_core.targets.cpu import CPU
from modelexport_core.targets.registry import target_session

ALPHAS = (0.3, 0.5, 0.6, 0.7, 0.8)  # migration strengths tried for each input, beside no smoothing
ROWS_PER_BATCH = 64  # activation rows sampled from each calibration batch to measure a candidate's error
MIN_GAIN = 2.0  # an input is smoothed only when that at least halves its error: a Mul that gains less costs more


@dataclass
class ActivationSample:
    """What one input tensor looked like over the calibration batches: each batch's per-channel minima and
    maxima (the range dynamic quantization takes at run time) and a sample of its rows."""

    ranges: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)


def weighted_inputs(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Input tensor -> the MatMuls that multiply it by a 2-D initializer weight no other node uses."""
    weights = {t.name: t for t in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input)
    inputs: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in model.graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is not None and len(weight.dims) == 2 and uses[weight.name] == 1:
            inputs[node.input[0]].append(node)
    return dict(inputs)


def smoothing_scales(models: dict[str, onnx.ModelProto], calibration: dict[str, Feeds]) -> dict[str, np.ndarray]:
    """Input tensor -> its per-channel s, for the inputs where smoothing lowers the int8 error of their matmuls'
    outputs on the calibration inputs of every graph (one s for all graphs: they share their weights)."""
    samples: dict[str, ActivationSample] = defaultdict(ActivationSample)
    for name, model in models.items():
        _sample_activations(model, calibration.get(name, []), samples)
    model = next(iter(models.values()))
    weights = {t.name: t for t in model.graph.initializer}
    scales = {}
    for tensor, nodes in weighted_inputs(model).items():
        if tensor in samples:
            matrices = [numpy_helper.to_array(weights[node.input[1]]).astype(np.float64) for node in nodes]
            best = _best_scale(samples[tensor], matrices)
            if best is not None:
                scales[tensor] = best
    return scales


def _sample_activations(model: onnx.ModelProto, feeds: Feeds, samples: dict[str, ActivationSample]) -> None:
    tensors = list(weighted_inputs(model))
    if not feeds or not tensors:
        return
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_empty_tensor_value_info(tensor) for tensor in tensors)
    session, rng = target_session(probe.SerializeToString(), CPU), np.random.default_rng(0)
    for feed in feeds:
        for tensor, values in zip(tensors, session.run(None, feed), strict=True):
            rows = values.reshape(-1, values.shape[-1]).astype(np.float64)
            samples[tensor].ranges.append((rows.min(axis=0), rows.max(axis=0)))
            samples[tensor].rows.append(rows[rng.choice(len(rows), min(ROWS_PER_BATCH, len(rows)), replace=False)])


def _best_scale(sample: ActivationSample, weights: list[np.ndarray]) -> np.ndarray | None:
    """The candidate s with the smallest int8 output error, None unless it is MIN_GAIN times below no smoothing's."""
    activation = np.max([np.maximum(-low, high) for low, high in sample.ranges], axis=0)
    weight = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
    candidates = [None] + [
        np.maximum(activation, 1e-5) ** alpha / np.maximum(weight, 1e-5) ** (1 - alpha) for alpha in ALPHAS
    ]
    errors = [_int8_error(sample, weights, np.ones_like(weight) if s is None else s) for s in candidates]
    best = int(np.argmin(errors))
    return candidates[best] if errors[best] * MIN_GAIN <= errors[0] else None


def _int8_error(sample: ActivationSample, weights: list[np.ndarray], s: np.ndarray) -> float:
    """Relative error of the matmuls' outputs when X / s is quantized per tensor to uint8 (its range: the whole
    batch's, as DynamicQuantizeLinear takes it) and s * W per column to int8."""
    quantized = [_int8_columns(w * s[:, None]) for w in weights]
    squared = norm = 0.0
    for (low, high), rows in zip(sample.ranges, sample.rows, strict=True):
        x = _uint8_tensor(rows / s, min(0.0, float((low / s).min())), max(0.0, float((high / s).max())))
        for w, q in zip(weights, quantized, strict=True):
            exact = rows @ w
            squared += float(np.square(x @ q - exact).sum())
            norm += float(np.square(exact).sum())
    return squared / max(norm, 1e-30)


def _int8_columns(w: np.ndarray) -> np.ndarray:
    scale = np.maximum(np.abs(w).max(axis=0), 1e-30) / 127
    return np.clip(np.round(w / scale), -127, 127) * scale


def _uint8_tensor(x: np.ndarray, low: float, high: float) -> np.ndarray:
    scale = max(high - low, 1e-30) / 255
    zero = np.round(-low / scale)
    return (np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale


def smoothed(model: onnx.ModelProto, scales: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` computing the same function, each input in `scales` divided by its s before its
    weighted matmuls (a Mul tagged with the first matmul's module) and their weights' rows multiplied by s."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    weights = {t.name: t for t in result.graph.initializer}
    nodes = list(result.graph.node)
    for tensor, consumers in weighted_inputs(result).items():
        if tensor not in scales:
            continue
        s, divided = scales[tensor], f"{tensor}_smoothed"
        inverse = numpy_helper.from_array((1 / s).astype(np.float32), f"{tensor}_smoothing")
        mul = helper.make_node("Mul", [tensor, inverse.name], [divided], name=f"{consumers[0].name}_smoothing")
        mul.metadata_props.extend(consumers[0].metadata_props)
        result.graph.initializer.append(inverse)
        nodes.insert(nodes.index(consumers[0]), mul)
        for node in consumers:
            weight = weights[node.input[1]]
            rows = numpy_helper.to_array(weight) * s[:, None].astype(np.float32)
            weight.CopyFrom(numpy_helper.from_array(rows.astype(np.float32), weight.name))
            node.input[0] = divided
    del result.graph.node[:]
    result.graph.node.extend(nodes)
    return result


def smooth_graphs(
    models: dict[str, onnx.ModelProto], calibration: dict[str, Feeds]
) -> tuple[dict[str, onnx.ModelProto], dict[str, int]]:
    """Every graph smoothed with the same scales (none without calibration inputs), and how many inputs were."""
    scales = smoothing_scales(models, calibration)
    return {name: smoothed(model, scales) for name, model in models.items()}, {"smoothed_inputs": len(scales)}
