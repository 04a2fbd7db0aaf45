"""Where onnxruntime places each node of a model on a target, named by the module that produced it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from modelexport_core.package.hierarchy import MODULE_PATH, iter_nodes, node_tags
from modelexport_core.targets.registry import target_session
from modelexport_core.targets.target import ExecutionTarget


@dataclass(frozen=True)
class PlacedNode:
    """One node of the session's graph: its name, op type, the provider that runs it, and its module if tagged."""

    name: str
    op_type: str
    provider: str
    module_path: str | None

    def describe(self) -> str:
        """`op_type module.path` where the node is tagged, else `op_type node-name`."""
        where = self.name if self.module_path is None else (self.module_path or "(root module)")
        return f"{self.op_type} {where}"


def node_placement(model_file: Path, target: ExecutionTarget) -> list[PlacedNode]:
    """Every node of the session's graph with the provider onnxruntime assigned it (CPU fallback allowed).

    The placement is onnxruntime's own (`get_provider_graph_assignment_info`). Nodes onnxruntime created
    (fusions, layout transposes) take the module of the model node their name starts with.
    """
    modules = _module_paths(onnx.load(model_file, load_external_data=False))
    session = target_session(str(model_file), target, cpu_fallback=True, record_placement=True)
    return [
        PlacedNode(node.name, node.op_type, subgraph.ep_name, _module_of(node.name, modules))
        for subgraph in session.get_provider_graph_assignment_info()
        for node in subgraph.get_nodes()
    ]


def _module_paths(model_proto: onnx.ModelProto) -> dict[str, str]:
    """Node name -> module path, for the tagged nodes."""
    return {
        node.name: node_tags(node)[MODULE_PATH]
        for node in iter_nodes(model_proto.graph)
        if MODULE_PATH in node_tags(node)
    }


def _module_of(name: str, modules: dict[str, str]) -> str | None:
    if name in modules:
        return modules[name]
    origin = max((known for known in modules if name.startswith(known + "/")), key=len, default=None)
    return modules[origin] if origin is not None else None
