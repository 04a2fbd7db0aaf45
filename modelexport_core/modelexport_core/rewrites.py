"""Graph rewrites a target asks for at export time; each keeps the CPU's results and every node's tags."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def materialize_broadcasts_into_layernorm(model_proto: onnx.ModelProto) -> int:
    """Give the constant operand of an Add that feeds a LayerNormalization the Add's full shape.

    QNN's HTP computes `LayerNorm(x + c)` wrongly when `c` broadcasts over the batch (BERT's and ViT's
    position embeddings, [1, S, H] against [B, S, H]): every row but the first drifts by up to the
    outputs' own size. Stored at [B, S, H] the same constant gives the same sums on every target.
    Returns the number of Adds rewritten.
    """
    graph = model_proto.graph
    initializers = {i.name: i for i in graph.initializer}
    feeds_layernorm = {node.input[0] for node in graph.node if node.op_type == "LayerNormalization"}
    shapes = _static_shapes(model_proto)
    rewritten = 0
    for node in graph.node:
        if node.op_type != "Add" or node.output[0] not in feeds_layernorm or node.output[0] not in shapes:
            continue
        full = shapes[node.output[0]]
        for index, operand in enumerate(node.input):
            constant = initializers.get(operand)
            if constant is None or list(constant.dims) == full:
                continue
            name = f"{operand}_broadcast_{'x'.join(map(str, full))}"
            if name not in initializers:
                values = np.broadcast_to(numpy_helper.to_array(constant), full).copy()
                initializers[name] = numpy_helper.from_array(values, name)
                graph.initializer.append(initializers[name])
            node.input[index] = name
            rewritten += 1
    _drop_unused_initializers(graph)
    return rewritten


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _static_shapes(model_proto: onnx.ModelProto) -> dict[str, list[int]]:
    """Tensor name -> its fully static shape, from onnx's shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model_proto).graph
    shapes = {}
    for value in [*inferred.value_info, *inferred.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    return shapes
