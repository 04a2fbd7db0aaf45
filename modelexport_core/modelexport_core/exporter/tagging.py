"""Tagging a freshly exported graph: each node's module, from what the dynamo exporter recorded."""

from __future__ import annotations

import ast
from collections import Counter
from typing import Any

import onnx

from modelexport_core.package.hierarchy import HIERARCHY_TAG, MODULE_PATH, iter_nodes, module_tree, node_tags

_NAME_SCOPES = "pkg.torch.onnx.name_scopes"
_CLASS_HIERARCHY = "pkg.torch.onnx.class_hierarchy"
_DROPPED = ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node")


def _set_props(node: onnx.NodeProto, props: dict[str, str]) -> None:
    del node.metadata_props[:]
    for key, value in props.items():
        node.metadata_props.add(key=key, value=value)


def _short(class_path: str) -> str:
    return class_path.rsplit(".", 1)[-1]


def _recorded_scope(props: dict[str, str], module_classes: dict[str, str]) -> list[tuple[str, str]]:
    """The (module path, class name) chain the exporter recorded, innermost last, kept to real modules."""
    if _NAME_SCOPES not in props or _CLASS_HIERARCHY not in props:
        return []
    scopes = ast.literal_eval(props[_NAME_SCOPES])[:-1]  # the last entry is the op itself
    classes = ast.literal_eval(props[_CLASS_HIERARCHY])[:-1]
    return [(path, _short(cls)) for path, cls in zip(scopes, classes, strict=False) if path in module_classes]


def hierarchy_tag(chain: list[tuple[str, str]], root_class: str) -> str:
    """`/Root/child:Class/grandchild:Class` from a (path, class) chain; unique per module instance."""
    parts = [f"/{root_class}"]
    parent = ""
    for path, cls in chain:
        if not path:
            continue
        local = path[len(parent) + 1 :] if parent and path.startswith(parent + ".") else path
        parts.append(f"/{local}:{cls}")
        parent = path
    return "".join(parts)


def tag_model(model_proto: onnx.ModelProto, torch_model: Any) -> dict[str, Any]:
    """Tag every node with its module path and hierarchy tag; return the hierarchy summary."""
    module_classes = {name: type(module).__name__ for name, module in torch_model.named_modules()}
    root_class = module_classes[""]
    counts: Counter[str] = Counter()
    root_fallback = 0
    for node in iter_nodes(model_proto.graph):
        props = node_tags(node)
        chain = _recorded_scope(props, module_classes)
        root_fallback += not chain
        module_path = chain[-1][0] if chain else ""
        props = {k: v for k, v in props.items() if k not in _DROPPED}
        props[MODULE_PATH] = module_path
        props[HIERARCHY_TAG] = hierarchy_tag(chain, root_class)
        _set_props(node, props)
        counts[module_path] += 1
    return {
        "modules": len(module_classes),
        "nodes": sum(counts.values()),
        "tagged_nodes": sum(counts.values()),
        "root_fallback_nodes": root_fallback,
        "tree": module_tree(counts, module_classes),
    }
