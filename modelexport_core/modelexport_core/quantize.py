"""int8: dynamic quantization of a package's graphs, keeping the modules most sensitive to it in fp32."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from .hierarchy import MODULE_PATH, node_tags
from .quiet import quieted
from .retag import retag

QUANTIZED_OPS = ("MatMul", "Gemm")

Feeds = list[dict[str, np.ndarray]]


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


def _fake_quantized_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w as dynamic int8 computes it: x per-tensor uint8 (asymmetric), w per-column int8 (symmetric)."""
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / 255 or 1.0
    zero = np.round(-low / scale)
    xq = (np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale
    wscale = np.abs(w).max(axis=0, keepdims=True) / 127
    wscale[wscale == 0] = 1.0
    return xq @ (np.round(w / wscale) * wscale)


def module_sensitivity(model: onnx.ModelProto, feeds: Feeds) -> dict[str, float]:
    """Per quantizable module: the relative error int8 adds to its matmuls' outputs on real inputs.

    One fp32 run exposes each matmul's input; its int8 product is simulated in numpy.
    """
    import onnxruntime
    from onnx import numpy_helper

    modules = quantizable_modules(model)
    weights = {t.name: t for t in model.graph.initializer}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    watched = sorted({node.input[0] for nodes in modules.values() for node in nodes})
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in watched)
    session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    errors: dict[str, float] = defaultdict(float)
    norms: dict[str, float] = defaultdict(float)
    for feed in feeds:
        values = dict(zip(watched, session.run(watched, feed)))
        for path, nodes in modules.items():
            for node in nodes:
                w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
                w = w.T if node.op_type == "Gemm" and _transposed(node) else w
                x = values[node.input[0]].reshape(-1, w.shape[0])
                exact = x @ w
                errors[path] += float(np.square(_fake_quantized_matmul(x, w) - exact).sum())
                norms[path] += float(np.square(exact).sum())
    return {path: (errors[path] / norms[path]) ** 0.5 if norms[path] else 0.0 for path in modules}


def _transposed(node: onnx.NodeProto) -> bool:
    return any(a.name == "transB" and a.i == 1 for a in node.attribute)


def select_fp32_modules(
    model: onnx.ModelProto,
    calibration: Feeds,
    accepts: Callable[[list[str]], bool],
    max_fp32_fraction: float = 0.25,
) -> tuple[list[str], dict[str, float]]:
    """The fewest of the most sensitive modules whose keeping fp32 `accepts` takes: 0, 1, 2, 4, ... of them until
    it does, then a bisection between the last count refused and the first accepted.

    Returns those modules (the most allowed when none is accepted) and every module's sensitivity.
    """
    sensitivity = module_sensitivity(model, calibration)
    ranked = sorted(sensitivity, key=sensitivity.__getitem__, reverse=True)
    limit = max(1, int(len(ranked) * max_fp32_fraction))
    refused, keep = -1, 0
    while not accepts(ranked[:keep]):
        if keep >= limit:
            return ranked[:keep], sensitivity
        refused, keep = keep, min(limit, max(1, keep * 2))
    while keep - refused > 1:
        middle = (refused + keep) // 2
        refused, keep = (refused, middle) if accepts(ranked[:middle]) else (middle, keep)
    return ranked[:keep], sensitivity
