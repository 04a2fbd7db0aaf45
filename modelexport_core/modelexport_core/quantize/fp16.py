"""fp16: the float graph in half precision (what NPUs such as the HTP compute natively), inputs and outputs kept
float32 so Optimum and the pipelines feed it as before; the most sensitive modules can stay float32."""

from __future__ import annotations

import onnx

from modelexport_core.package.hierarchy import MODULE_PATH, iter_nodes, node_tags
from modelexport_core.package.retag import retag
from modelexport_core.quiet import quieted


def to_fp16(model: onnx.ModelProto, keep_fp32: list[str]) -> onnx.ModelProto:
    """fp16 weights and computation outside the modules in `keep_fp32` (whole modules, every node of theirs);
    float32 inputs and outputs; every node of the result carries hierarchy tags."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    kept = set(keep_fp32)
    blocked = [
        node.name
        for node in iter_nodes(model.graph)
        if node_tags(node).get(MODULE_PATH) in kept or _casts_to_bool(node)  # fp16 -> bool: the HTP refuses it
    ]
    half = onnx.ModelProto()
    half.CopyFrom(model)  # converted in place
    with quieted("root"):
        convert_float_to_float16(half, keep_io_types=True, node_block_list=blocked, disable_shape_infer=True)
    OnnxModel(half).topological_sort()  # the casts it inserts around blocked nodes come last
    retag(half, model)
    return half


def _casts_to_bool(node: onnx.NodeProto) -> bool:
    return node.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.BOOL for a in node.attribute)
