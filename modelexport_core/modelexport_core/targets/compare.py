"""`compare`: run a package on a target and on the CPU, and show which module's outputs drift first.

Every module's outputs (the tensors its nodes, its descendants' included, hand to nodes of other modules)
become extra graph outputs of a temporary copy of the model; both sessions run the same inputs, and each
module gets the largest deviation among its outputs.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from modelexport_core.errors import ModelExportError
from modelexport_core.package.hierarchy import MODULE_PATH, node_tags
from modelexport_core.package.layout import EXTERNAL_DATA_THRESHOLD, MODEL_FILE, find_model_file
from modelexport_core.targets.cpu import CPU
from modelexport_core.targets.deviation import deviation
from modelexport_core.targets.registry import target_session
from modelexport_core.targets.target import ExecutionTarget

# A module "jumps" when its relative deviation is JUMP_FACTOR times the largest one before it, and above
# JUMP_FLOOR: fp16 rounds a value to within 2**-11 (4.9e-4) of itself, so smaller deviations are rounding.
JUMP_FACTOR = 10.0
JUMP_FLOOR = 1e-3
_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)


@dataclass
class ModuleDeviation:
    """The largest deviation of one module's outputs between the target and the CPU."""

    path: str
    outputs: list[str]
    order: int
    deviation: float = 0.0
    scale: float = 0.0
    jump: bool = False
    children: list[ModuleDeviation] = field(default_factory=list)

    @property
    def relative(self) -> float:
        """The deviation as a fraction of the outputs' largest magnitude on CPU."""
        return self.deviation / self.scale if self.scale else self.deviation

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["relative"] = self.relative
        data["children"] = [child.to_dict() for child in self.children]
        return data


@dataclass
class Comparison:
    """Per-module deviations as a tree (root: the model's outputs) and the first module whose deviation jumps."""

    target: str
    reference: str
    root: ModuleDeviation
    first_jump: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "reference": self.reference,
            "first_jump": self.first_jump,
            "tree": self.root.to_dict(),
        }


def module_outputs(model_proto: onnx.ModelProto) -> dict[str, tuple[int, list[str]]]:
    """Module path -> (position of its last producing node, the tensors it hands to other modules).

    The root module's outputs are the graph's outputs.
    """
    graph = model_proto.graph
    producer_module: dict[str, str] = {}
    position: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.output:
            producer_module[name] = node_tags(node).get(MODULE_PATH, "")
            position[name] = index
    outputs: dict[str, list[str]] = {"": [o.name for o in graph.output]}
    order: dict[str, int] = {"": len(graph.node)}
    graph_outputs = set(outputs[""])

    def hand_over(tensor: str, consumer: str | None) -> None:
        for module in _ancestors(producer_module[tensor]):
            if consumer is None or not _within(consumer, module):
                if tensor not in outputs.setdefault(module, []):
                    outputs[module].append(tensor)
                order[module] = max(order.get(module, -1), position[tensor])

    for node in graph.node:
        consumer = node_tags(node).get(MODULE_PATH, "")
        for tensor in node.input:
            if tensor in producer_module:
                hand_over(tensor, consumer)
    for tensor in graph_outputs & set(producer_module):
        hand_over(tensor, None)
    return {module: (order[module], tensors) for module, tensors in outputs.items()}


def _ancestors(path: str) -> list[str]:
    """The module and every enclosing module path, down to (not including) the root."""
    parts = path.split(".") if path else []
    return [".".join(parts[:end]) for end in range(len(parts), 0, -1)]


def _within(path: str, module: str) -> bool:
    return path == module or path.startswith(module + ".")


def compare_on_target(
    package: str | Path, target: ExecutionTarget, inputs: dict[str, np.ndarray], reference: ExecutionTarget = CPU
) -> Comparison:
    """Run `inputs` through a copy of the package that exposes every module's outputs, on both targets."""
    model_file = find_model_file(package)
    model_proto = onnx.shape_inference.infer_shapes(onnx.load(model_file))
    modules = module_outputs(model_proto)
    if set(modules) == {""}:
        raise ModelExportError(f"{model_file} has no modelexport hierarchy tags: export it with modelexport")
    exposed = _expose(model_proto, {t for _, tensors in modules.values() for t in tensors})
    with tempfile.TemporaryDirectory(prefix="modelexport-compare-") as scratch:
        copy = Path(scratch) / MODEL_FILE
        onnx.save(model_proto, copy, save_as_external_data=model_proto.ByteSize() > EXTERNAL_DATA_THRESHOLD)
        names = [o.name for o in model_proto.graph.output]
        on_target = dict(zip(names, target_session(str(copy), target).run(None, inputs), strict=True))
        on_reference = dict(zip(names, target_session(str(copy), reference).run(None, inputs), strict=True))
    deviations = {name: deviation(on_target[name], on_reference[name]) for name in exposed}
    nodes = {
        path: ModuleDeviation(path, [t for t in tensors if t in deviations], order)
        for path, (order, tensors) in modules.items()
    }
    for node in nodes.values():
        measured = [deviations[t] for t in node.outputs]
        node.deviation = max((d for d, _ in measured), default=0.0)
        node.scale = max((s for _, s in measured), default=0.0)
    first_jump = _mark_first_jump(nodes)
    return Comparison(target.name, reference.name, _tree(nodes), first_jump)


def _expose(model_proto: onnx.ModelProto, tensors: set[str]) -> set[str]:
    """Add the float tensors among `tensors` with a known shape as graph outputs; return the exposed names."""
    graph = model_proto.graph
    typed = {v.name: v for v in [*graph.value_info, *graph.output]}
    exposed = set()
    existing = {o.name for o in graph.output}
    for name in sorted(tensors):
        value = typed.get(name)
        if value is None or value.type.tensor_type.elem_type not in _FLOAT_TYPES:
            continue
        if not all(d.HasField("dim_value") for d in value.type.tensor_type.shape.dim):
            continue
        exposed.add(name)
        if name not in existing:
            graph.output.append(value)
    return exposed


def _mark_first_jump(nodes: dict[str, ModuleDeviation]) -> str | None:
    """Mark the first module, in execution order (deeper first on ties), whose deviation jumps."""
    largest_before = 0.0
    for node in sorted(nodes.values(), key=lambda n: (n.order, -n.path.count("."), n.path == "")):
        if node.relative >= JUMP_FLOOR and node.relative >= JUMP_FACTOR * largest_before:
            node.jump = True
            return node.path
        largest_before = max(largest_before, node.relative)
    return None


def _tree(nodes: dict[str, ModuleDeviation]) -> ModuleDeviation:
    """Hang each module under its nearest measured ancestor, children in execution order."""
    for path in sorted(nodes, key=lambda p: nodes[p].order):
        if path:
            parent = next((a for a in _ancestors(path)[1:] if a in nodes), "")
            nodes[parent].children.append(nodes[path])
    return nodes[""]
