"""Hierarchy tags: which nn.Module produced each ONNX node, from what the dynamo exporter recorded."""

from __future__ import annotations

import ast
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import onnx

MODULE_PATH = "modelexport.module_path"
HIERARCHY_TAG = "modelexport.hierarchy_tag"
_NAME_SCOPES = "pkg.torch.onnx.name_scopes"
_CLASS_HIERARCHY = "pkg.torch.onnx.class_hierarchy"
_DROPPED = ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node")


def iter_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of a graph, including those of subgraphs (If / Loop / Scan bodies)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from iter_nodes(attribute.g)
            for subgraph in attribute.graphs:
                yield from iter_nodes(subgraph)


def node_tags(node: onnx.NodeProto) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


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


def module_tree(direct_counts: Counter[str], module_classes: dict[str, str]) -> dict[str, Any]:
    """Nested {path, class, nodes (own), total (with descendants), children} for modules that produced nodes."""
    children: dict[str, list[str]] = defaultdict(list)
    for path in module_classes:
        if path:
            children[_nearest_ancestor(path, module_classes)].append(path)

    def build(path: str) -> dict[str, Any]:
        kids = [child for child in (build(c) for c in children[path]) if child["total"]]
        own = direct_counts.get(path, 0)
        return {
            "path": path,
            "class": module_classes[path],
            "nodes": own,
            "total": own + sum(child["total"] for child in kids),
            "children": kids,
        }

    return build("")


def _nearest_ancestor(path: str, module_classes: dict[str, str]) -> str:
    while "." in path:
        path = path.rsplit(".", 1)[0]
        if path in module_classes:
            return path
    return ""
