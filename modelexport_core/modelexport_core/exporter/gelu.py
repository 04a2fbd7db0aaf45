"""The exact GELU in the order onnxruntime fuses: torch's exporter writes x * (0.5 * (1 + erf(x / sqrt 2))), a
form onnxruntime's GeluFusion does not match, so the CPU runs five elementwise passes instead of one Gelu. The
same product as (x * (1 + erf(x / sqrt 2))) * 0.5 is matched; halving is exact in floating point, so the
outputs do not change by a bit."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def gelu_in_fusable_order(model: onnx.ModelProto) -> int:
    """Swap the operands of each exact GELU's two final Muls in place (nodes, names and tags stay); how many."""
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producers = {output: node for node in graph.node for output in node.output}
    halves = _scalar_names(graph, 0.5)
    swapped = 0
    for erf in (node for node in graph.node if node.op_type == "Erf"):
        scaled = producers.get(erf.input[0])
        add = _only_consumer(consumers, erf.output[0], "Add")
        half = _only_consumer(consumers, add.output[0], "Mul") if add else None
        outer = _only_consumer(consumers, half.output[0], "Mul") if half else None
        if scaled is None or half is None or outer is None:
            continue
        x, constant = scaled.input[0], next((n for n in half.input if n != add.output[0]), "")
        if constant not in halves or x not in outer.input:
            continue
        _set_inputs(half, [x, add.output[0]])  # x * (1 + erf)
        _set_inputs(outer, [half.output[0], constant])  # ... * 0.5
        swapped += 1
    return swapped


def _set_inputs(node: onnx.NodeProto, inputs: list[str]) -> None:
    del node.input[:]
    node.input.extend(inputs)


def _only_consumer(consumers: dict[str, list[onnx.NodeProto]], tensor: str, op_type: str) -> onnx.NodeProto | None:
    found = consumers.get(tensor, [])
    return found[0] if len(found) == 1 and found[0].op_type == op_type else None


def _scalar_names(graph: onnx.GraphProto, value: float) -> set[str]:
    """Names of the one-element float initializers and Constant outputs equal to `value`."""
    tensors = [(t.name, t) for t in graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
    tensors += [
        (n.output[0], a.t) for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"
    ]
    return {
        name
        for name, tensor in tensors
        if np.prod(tensor.dims, dtype=int) == 1 and tensor.data_type == onnx.TensorProto.FLOAT
        and float(numpy_helper.to_array(tensor).ravel()[0]) == value
    }  # fmt: skip
