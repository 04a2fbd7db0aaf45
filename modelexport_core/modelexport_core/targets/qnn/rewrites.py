"""Graph rewrites a target asks for at export time; each keeps the CPU's results and every node's tags."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def materialize_broadcasts_into_layernorm(model_proto: onnx.ModelProto) -> int:
    """Give the broadcast operand of an Add that feeds a LayerNormalization the Add's full shape.

    QNN's HTP computes `LayerNorm(x + p)` wrongly when `p` broadcasts over the batch (BERT's position
    embeddings, [1, S, H] against [B, S, H]): every batch row but the first drifts by up to the outputs'
    own size, also when `p` is added earlier in a chain of Adds that ends in the LayerNorm (LayoutLM adds
    six embeddings after it). A constant `p` is stored at [B, S, H]; a computed one goes through an Expand
    to that shape (tagged as the Add). Operands of lower rank (biases) stay as they are. The sums are the
    same on every target. Returns the number of operands changed.
    """
    graph = model_proto.graph
    initializers = {i.name: i for i in graph.initializer}
    feeds_layernorm = {node.input[0] for node in graph.node if node.op_type == "LayerNormalization"}
    for node in reversed(graph.node):  # topological order: an Add's consumers come after it
        if node.op_type == "Add" and node.output[0] in feeds_layernorm:
            feeds_layernorm.update(node.input)
    shapes = _static_shapes(model_proto)
    nodes: list[onnx.NodeProto] = []
    rewritten = 0
    for node in graph.node:
        full = shapes.get(node.output[0]) if node.op_type == "Add" and node.output[0] in feeds_layernorm else None
        for index, operand in enumerate(node.input if full else ()):
            constant = initializers.get(operand)
            shape = list(constant.dims) if constant is not None else shapes.get(operand)
            if shape is None or shape == full or len(shape) != len(full):
                continue
            name = f"{operand}_broadcast_{'x'.join(map(str, full))}"
            if constant is not None and name not in initializers:
                values = np.broadcast_to(numpy_helper.to_array(constant), full).copy()
                initializers[name] = numpy_helper.from_array(values, name)
                graph.initializer.append(initializers[name])
            elif constant is None:
                target_shape = numpy_helper.from_array(np.array(full, dtype=np.int64), f"{name}_shape")
                graph.initializer.append(target_shape)
                expand = onnx.helper.make_node(
                    "Expand", [operand, target_shape.name], [name], name=f"{node.name}/{name}"
                )
                expand.metadata_props.extend(node.metadata_props)
                nodes.append(expand)
            node.input[index] = name
            rewritten += 1
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused_initializers(graph)
    return rewritten


def masked_fills_as_where(model_proto: onnx.ModelProto) -> int:
    """Turn `x[mask] = c` (ScatterND at the NonZero indices of a mask shaped like x) into `Where(mask, c, x)`.

    PyTorch exports a boolean-mask assignment (Wav2Vec2 zeroes its padded frames so) through NonZero,
    whose output size depends on the data: QNN refuses it and the CPU takes those nodes. Where computes the
    same values with fixed shapes. The Where is tagged as the ScatterND; the nodes left unused are dropped.
    Returns the number of assignments rewritten.
    """
    graph = model_proto.graph
    initializers = {i.name: i for i in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    shapes = _static_shapes(model_proto)
    rewritten = 0
    for index, node in enumerate(graph.node):
        mask = _nonzero_mask(node, producers) if node.op_type == "ScatterND" else None
        fill = _scalar_fill(node.input[2], producers, initializers) if mask else None
        if fill is None or shapes.get(mask) is None or shapes.get(mask) != shapes.get(node.input[0]):
            continue
        constant = numpy_helper.from_array(fill, f"{node.name}_fill")
        graph.initializer.append(constant)
        where = onnx.helper.make_node("Where", [mask, constant.name, node.input[0]], list(node.output), name=node.name)
        where.metadata_props.extend(node.metadata_props)
        graph.node[index].CopyFrom(where)
        rewritten += 1
    _drop_unused_nodes(graph)
    _drop_unused_initializers(graph)
    return rewritten


def _nonzero_mask(scatter: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> str | None:
    """The mask whose NonZero indices (transposed to [N, rank]) the ScatterND writes at, else None."""
    transpose = producers.get(scatter.input[1])
    if transpose is None or transpose.op_type != "Transpose":
        return None
    nonzero = producers.get(transpose.input[0])
    return nonzero.input[0] if nonzero is not None and nonzero.op_type == "NonZero" else None


def _scalar_fill(updates: str, producers: dict[str, onnx.NodeProto], initializers: dict) -> np.ndarray | None:
    """The one value `updates` repeats (a constant through Expand and Reshape), as a 0-d array, else None."""
    while updates in producers and producers[updates].op_type in ("Expand", "Reshape"):
        updates = producers[updates].input[0]
    if updates not in initializers:
        return None
    values = numpy_helper.to_array(initializers[updates])
    return values.reshape(()) if values.size == 1 else None


def _drop_unused_nodes(graph: onnx.GraphProto) -> None:
    used = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(output in used for output in node.output):
            kept.append(node)
            used.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _static_shapes(model_proto: onnx.ModelProto) -> dict[str, list[int]]:
    """Tensor name -> its fully static shape, from onnx's shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model_proto).graph
    shapes = {}
    for value in [*inferred.input, *inferred.value_info, *inferred.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    return shapes
