"""Which modules to keep at higher precision: each module's end-to-end sensitivity to a conversion (int8, fp16,
8-bit weights), and the fewest of the most sensitive that an accuracy gate accepts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np
import onnx

from modelexport_core.package.hierarchy import MODULE_PATH, node_tags
from modelexport_core.targets.cpu import CPU
from modelexport_core.targets.registry import target_session

WEIGHTED_OPS = ("MatMul", "Gemm")

Feeds = list[dict[str, np.ndarray]]
Batch = tuple[str, dict[str, np.ndarray]]  # (graph name, its feed)
Convert = Callable[[onnx.ModelProto, list[str]], onnx.ModelProto]  # (graph, modules kept) -> lower precision


def quantizable_modules(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Module path -> its MatMul / Gemm nodes whose weight is an initializer (what quantization converts)."""
    weights = {t.name for t in model.graph.initializer}
    modules: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in model.graph.node:
        if node.op_type in WEIGHTED_OPS and len(node.input) > 1 and node.input[1] in weights:
            modules[node_tags(node).get(MODULE_PATH, "")].append(node)
    return dict(modules)


def module_sensitivity(model: onnx.ModelProto, feeds: Feeds, convert: Convert) -> dict[str, float]:
    """Per quantizable module: the relative error of the graph's first output on `feeds` when that module alone
    is converted (end to end, so a module whose error later layers amplify ranks high)."""
    modules = quantizable_modules(model)
    batches = [("graph", feed) for feed in feeds]
    reference = first_outputs({"graph": model}, batches)
    norm = sum(float(np.square(r.astype(np.float64)).sum()) for r in reference)
    errors = {}
    for path in modules:
        alone = convert(model, [other for other in modules if other != path])
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


def select_kept_modules(
    model: onnx.ModelProto,
    calibration: Feeds,
    accepts: Callable[[list[str]], bool],
    convert: Convert,
    max_kept_fraction: float = 0.25,
) -> tuple[list[str], dict[str, float]]:
    """The fewest of the most sensitive modules (ranked through `convert`) whose keeping at higher precision
    `accepts` takes: none when it takes the plain conversion, else 1, 2, 4, ... of them until it does, then a
    bisection between the last count refused and the first accepted.

    Returns those modules (the most allowed when none is accepted) and the sensitivity of every module ({} when
    the plain conversion was accepted: it is then not measured).
    """
    if accepts([]):
        return [], {}
    sensitivity = module_sensitivity(model, calibration, convert)
    ranked = sorted(sensitivity, key=sensitivity.__getitem__, reverse=True)
    limit = max(1, int(len(ranked) * max_kept_fraction))
    refused, keep = 0, 1
    while not accepts(ranked[:keep]):
        if keep >= limit:
            return ranked[:keep], sensitivity
        refused, keep = keep, min(limit, keep * 2)
    while keep - refused > 1:
        middle = (refused + keep) // 2
        refused, keep = (refused, middle) if accepts(ranked[:middle]) else (middle, keep)
    return ranked[:keep], sensitivity
