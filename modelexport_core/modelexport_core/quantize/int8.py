"""int8: dynamic quantization of a package's graphs, keeping the modules most sensitive to it in fp32."""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx

from modelexport_core.package.retag import retag
from modelexport_core.quantize.search import WEIGHTED_OPS, quantizable_modules
from modelexport_core.quiet import quieted


def quantize_graph(model: onnx.ModelProto, keep_fp32: list[str]) -> onnx.ModelProto:
    """Dynamic int8 (per-channel int8 weights, uint8 activations) of every MatMul / Gemm outside `keep_fp32`;
    every node of the result carries hierarchy tags."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = [node.name for path in keep_fp32 for node in quantizable_modules(model).get(path, [])]
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "int8.onnx"
        with quieted("root"):  # its advice to pre-process the model first
            quantize_dynamic(
                model, output, op_types_to_quantize=list(WEIGHTED_OPS), per_channel=True,
                weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
            )  # fmt: skip
        quantized = onnx.load(output)
    retag(quantized, model)
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(model.metadata_props)
    return quantized
