"""Graph rewrites a target asks for at export time; each keeps the CPU's results and every node's tags."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def materialize_broadcasts_into_layernorm(model_proto: onnx.ModelProto) -> int:
    """Give the broadcast operand of an Add that feeds a LayerNormalization the Add's full shape.

    QNN's HTP computes `LayerNorm(x + p)` wrongly when `p` broadcasts over the batch (BERT's position
    embeddings, [1, S, H] against [B, S, H]): every batch row but the first drifts by up to the outputs'
    own size. A constant `p` is stored at [B, S, H]; a computed one goes through an Expand to that shape
    (tagged as the Add). The sums are the same on every target. Returns the number of operands changed.
    """
    graph = model_proto.graph
    initializers = {i.name: i for i in graph.initializer}
    feeds_layernorm = {node.input[0] for node in graph.node if node.op_type == "LayerNormalization"}
    shapes = _static_shapes(model_proto)
    nodes: list[onnx.NodeProto] = []
    rewritten = 0
    for node in graph.node:
        full = shapes.get(node.output[0]) if node.op_type == "Add" and node.output[0] in feeds_layernorm else None
        for index, operand in enumerate(node.input if full else ()):
            constant = initializers.get(operand)
            shape = list(constant.dims) if constant is not None else shapes.get(operand)
            if shape is None or shape == full:
                continue
            name = f"{operand}_broadcast_{'x'.join(map(str, full))}"
            if constant is not None and name not in initializers:
                values = np.broadcast_to(numpy_helper.to_array(constant), full).copy()
                initializers[name] = numpy_helper.from_array(values, name)
                graph.initializer.append(initializers[name])
            elif constant is None:
                target_shape = numpy_helper.from_array(np.array(full, dtype=np.int64), f"{name}_shape")
                graph.initializer.append(target_shape)
                expand = onnx.helper.make_node("Expand", [operand, target_shape.name], [name], name=f"{node.name}/{name}")
                expand.metadata_props.extend(node.metadata_props)
                nodes.append(expand)
            node.input[index] = name
            rewritten += 1
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
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
