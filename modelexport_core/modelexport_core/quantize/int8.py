"""int8: dynamic quantization of a package's graphs, keeping the modules most sensitive to it in fp32."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from modelexport_core.package.hierarchy import MODULE_PATH, node_tags
from modelexport_core.package.retag import retag
from modelexport_core.quiet import quieted
from modelexport_core.targets.cpu import CPU
from modelexport_core.targets.registry import target_session

QUANTIZED_OPS = ("MatMul", "Gemm")

Feeds = list[dict[str, np.ndarray]]
Batch = tuple[str, dict[str, np.ndarray]]  # (graph name, its feed)


def quantizable_modules(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Module path -> its MatMul / Gemm nodes whose weight is an initializer (what dynamic int8 quantizes)."""
    weights = {t.name for t in model.graph.initializer}
    modules: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OPS and len(node.input) > 1 and node.input[1] in weights:
            modules[node_tags(node).get(MODULE_PATH, "")].append(node)
    return dict(modules)


def quantize_graph(model: onnx.ModelProto, keep_fp32: list[str]) -> onnx.ModelProto:
    """Dynamic int8 (per-channel int8 weights, uint8 activations) of every MatMul / Gemm outside `keep_fp32`;
    every node of the result carries hierarchy tags."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = [node.name for path in keep_fp32 for node in quantizable_modules(model).get(path, [])]
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "int8.onnx"
        with quieted("root"):  # its advice to pre-process the model first
            quantize_dynamic(
                model, output, op_types_to_quantize=list(QUANTIZED_OPS), per_channel=True,
                weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
            )  # fmt: skip
        quantized = onnx.load(output)
    retag(quantized, model)
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(model.metadata_props)
    return quantized


def module_sensitivity(model: onnx.ModelProto, feeds: Feeds) -> dict[str, float]:
    """Per quantizable module: the relative error of the graph's first output on `feeds` when that module alone
    is int8 (end to end, so a module whose error later layers amplify ranks high)."""
    modules = quantizable_modules(model)
    batches = [("graph", feed) for feed in feeds]
    reference = first_outputs({"graph": model}, batches)
    norm = sum(float(np.square(r.astype(np.float64)).sum()) for r in reference)
    errors = {}
    for path in modules:
        alone = quantize_graph(model, [other for other in modules if other != path])
        quantized = first_outputs({"graph": alone}, batches)
        squared = sum(
            float(np.square(q.astype(np.float64) - r).sum()) for q, r in zip(quantized, reference, strict=True)
        )
        errors[path] = (squared / norm) ** 0.5
    return errors


def first_outputs(models: dict[str, onnx.ModelProto], batches: list[Batch]) -> list[np.ndarray]:
    """The first output of every batch, each on its graph."""
    sessions = {
        name: target_session(models[name].SerializeToString(), CPU)
        for name in dict.fromkeys(name for name, _ in batches)
    }
    return [sessions[name].run(None, feed)[0] for name, feed in batches]


def select_fp32_modules(
    model: onnx.ModelProto,
    calibration: Feeds,
    accepts: Callable[[list[str]], bool],
    max_fp32_fraction: float = 0.25,
) -> tuple[list[str], dict[str, float]]:
    """The fewest of the most sensitive modules whose keeping fp32 `accepts` takes: none when it takes plain int8,
    else 1, 2, 4, ... of them until it does, then a bisection between the last count refused and the first accepted.

    Returns those modules (the most allowed when none is accepted) and the sensitivity of every module ({} when
    plain int8 was accepted: it is then not measured).
    """
    if accepts([]):
        return [], {}
    sensitivity = module_sensitivity(model, calibration)
    ranked = sorted(sensitivity, key=sensitivity.__getitem__, reverse=True)
    limit = max(1, int(len(ranked) * max_fp32_fraction))
    refused, keep = 0, 1
    while not accepts(ranked[:keep]):
        if keep >= limit:
            return ranked[:keep], sensitivity
        refused, keep = keep, min(limit, keep * 2)
    while keep - refused > 1:
        middle = (refused + keep) // 2
        refused, keep = (refused, middle) if accepts(ranked[:middle]) else (middle, keep)
    return ranked[:keep], sensitivity
