"""Activation smoothing before dynamic int8 (SmoothQuant): a few input channels of a matmul carry activations
tens of times larger than the rest, and one per-tensor activation scale then leaves the others a few levels.
Dividing those channels by s (a Mul before the matmul) and multiplying the weight's rows by s computes the same
product with activations int8 can hold. Where one channel towers over all the others (MiniLM's first FFN output:
25 against at most 6), it is split off instead: zeroed before the int8 matmul, its product with its weight row
added back in fp32. Each input's treatment is chosen on calibration inputs, or none at all."""

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


@dataclass(frozen=True)
class Smoothing:
    """How one matmul input is prepared: divided by `s` per channel, and the channel `outlier` (if any) split off."""

    s: np.ndarray
    outlier: int | None = None


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


def smoothings(models: dict[str, onnx.ModelProto], calibration: dict[str, Feeds]) -> dict[str, Smoothing]:
    """Input tensor -> its Smoothing, for the inputs where one lowers the int8 error of their matmuls' outputs on
    the calibration inputs of every graph (one for all graphs: they share their weights)."""
    samples: dict[str, ActivationSample] = defaultdict(ActivationSample)
    for name, model in models.items():
        _sample_activations(model, calibration.get(name, []), samples)
    model = next(iter(models.values()))
    weights = {t.name: t for t in model.graph.initializer}
    chosen = {}
    for tensor, nodes in weighted_inputs(model).items():
        if tensor in samples:
            matrices = [numpy_helper.to_array(weights[node.input[1]]).astype(np.float64) for node in nodes]
            best = _best_smoothing(samples[tensor], matrices)
            if best is not None:
                chosen[tensor] = best
    return chosen


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


def _best_smoothing(sample: ActivationSample, weights: list[np.ndarray]) -> Smoothing | None:
    """The candidate with the smallest int8 output error, each step only when it is MIN_GAIN times below the
    simpler one's: an s (or none) first, then the largest channel split off on top of the best s."""
    activation = np.max([np.maximum(-low, high) for low, high in sample.ranges], axis=0)
    weight = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
    scales = [np.ones_like(weight)] + [
        np.maximum(activation, 1e-5) ** alpha / np.maximum(weight, 1e-5) ** (1 - alpha) for alpha in ALPHAS
    ]
    candidates = [Smoothing(s) for s in scales] + [Smoothing(s, int(np.argmax(activation))) for s in scales]
    errors = [_int8_error(sample, weights, candidate) for candidate in candidates]
    count = len(scales)
    smoothed, split = int(np.argmin(errors[:count])), count + int(np.argmin(errors[count:]))
    best = smoothed if errors[smoothed] * MIN_GAIN <= errors[0] else 0
    best = split if errors[split] * MIN_GAIN <= errors[best] else best
    return candidates[best] if best else None


def _int8_error(sample: ActivationSample, weights: list[np.ndarray], smoothing: Smoothing) -> float:
    """Relative error of the matmuls' outputs when X / s (the split channel zeroed) is quantized per tensor to
    uint8 (its range: the whole batch's, as DynamicQuantizeLinear takes it) and s * W per column to int8 (the
    split channel's row zeroed), the split channel's product added exactly."""
    s, keep = smoothing.s, np.ones(len(smoothing.s))
    if smoothing.outlier is not None:
        keep[smoothing.outlier] = 0
    quantized = [_int8_columns(w * (s * keep)[:, None]) for w in weights]
    squared = norm = 0.0
    for (low, high), rows in zip(sample.ranges, sample.rows, strict=True):
        scaled_low, scaled_high = (low / s) * keep, (high / s) * keep
        x = _uint8_tensor(rows / s * keep, min(0.0, float(scaled_low.min())), max(0.0, float(scaled_high.max())))
        for w, q in zip(weights, quantized, strict=True):
            exact = rows @ w
            squared += float(np.square(x @ q + (rows * (1 - keep)) @ w - exact).sum())
            norm += float(np.square(exact).sum())
    return squared / max(norm, 1e-30)


def _int8_columns(w: np.ndarray) -> np.ndarray:
    scale = np.maximum(np.abs(w).max(axis=0), 1e-30) / 127
    return np.clip(np.round(w / scale), -127, 127) * scale


def _uint8_tensor(x: np.ndarray, low: float, high: float) -> np.ndarray:
    scale = max(high - low, 1e-30) / 255
    zero = np.round(-low / scale)
    return (np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale


def smoothed(model: onnx.ModelProto, chosen: dict[str, Smoothing]) -> onnx.ModelProto:
    """A copy of `model` computing the same function, each input in `chosen` divided by its s before its
    weighted matmuls (a Mul tagged with the first matmul's module) and their weights' rows multiplied by s; a split
    channel is zeroed there and its product with each weight row added back after the matmul (and its bias)."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    weights = {t.name: t for t in result.graph.initializer}
    nodes = list(result.graph.node)
    for tensor, consumers in weighted_inputs(result).items():
        if tensor not in chosen:
            continue
        smoothing, divided = chosen[tensor], f"{tensor}_smoothed"
        inverse = (1 / smoothing.s).astype(np.float32)
        if smoothing.outlier is not None:
            inverse[smoothing.outlier] = 0
            _split_off(result, nodes, tensor, consumers, smoothing.outlier, weights)
        result.graph.initializer.append(numpy_helper.from_array(inverse, f"{tensor}_smoothing"))
        mul = helper.make_node("Mul", [tensor, f"{tensor}_smoothing"], [divided], name=f"{consumers[0].name}_smoothing")
        mul.metadata_props.extend(consumers[0].metadata_props)
        nodes.insert(nodes.index(consumers[0]), mul)
        for node in consumers:
            weight = weights[node.input[1]]
            rows = numpy_helper.to_array(weight) * (smoothing.s * (inverse != 0))[:, None].astype(np.float32)
            weight.CopyFrom(numpy_helper.from_array(rows.astype(np.float32), weight.name))
            node.input[0] = divided
    del result.graph.node[:]
    result.graph.node.extend(nodes)
    return result


def _split_off(
    model: onnx.ModelProto,
    nodes: list[onnx.NodeProto],
    tensor: str,
    consumers: list[onnx.NodeProto],
    channel: int,
    weights: dict[str, onnx.TensorProto],
) -> None:
    """Channel `channel` of `tensor` (Gather), times each consumer's weight row (Mul), added to its output: after
    its bias Add when that is the matmul's one consumer, so onnxruntime still fuses the bias into the matmul."""
    values = f"{tensor}_outlier"
    model.graph.initializer.append(numpy_helper.from_array(np.array([channel], np.int64), f"{values}_index"))
    gather = helper.make_node("Gather", [tensor, f"{values}_index"], [values], name=f"{values}_gather", axis=-1)
    gather.metadata_props.extend(consumers[0].metadata_props)
    nodes.insert(nodes.index(consumers[0]), gather)
    for node in consumers:
        row = numpy_helper.to_array(weights[node.input[1]])[channel].astype(np.float32)
        model.graph.initializer.append(numpy_helper.from_array(row, f"{node.name}_outlier_row"))
        producer = _bias_add(nodes, node) or node
        total = producer.output[0]
        producer.output[0] = f"{total}_int8"
        part = helper.make_node("Mul", [values, f"{node.name}_outlier_row"], [f"{node.name}_outlier_part"])
        add = helper.make_node("Add", [producer.output[0], part.output[0]], [total])
        for added, kind in ((part, "outlier_part"), (add, "outlier_add")):
            added.name = f"{node.name}_{kind}"
            added.metadata_props.extend(node.metadata_props)
        position = nodes.index(producer) + 1
        nodes[position:position] = [part, add]


def _bias_add(nodes: list[onnx.NodeProto], matmul: onnx.NodeProto) -> onnx.NodeProto | None:
    users = [node for node in nodes if matmul.output[0] in node.input]
    return users[0] if len(users) == 1 and users[0].op_type == "Add" else None


def smooth_graphs(
    models: dict[str, onnx.ModelProto], calibration: dict[str, Feeds]
) -> tuple[dict[str, onnx.ModelProto], dict[str, int]]:
    """Every graph smoothed the same way (not at all without calibration inputs), and how many inputs were
    smoothed and had a channel split off."""
    chosen = smoothings(models, calibration)
    counts = {"smoothed_inputs": len(chosen), "split_channels": sum(c.outlier is not None for c in chosen.values())}
    return {name: smoothed(model, chosen) for name, model in models.items()}, counts
