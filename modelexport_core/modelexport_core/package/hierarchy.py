"""Hierarchy tags in a package: which nn.Module produced each ONNX node (the two node-level metadata_props),
and the module tree with node counts, read back from a package."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx

from modelexport_core.errors import ModelExportError
from modelexport_core.package.layout import find_model_file, load_graph, read_export_metadata

MODULE_PATH = "modelexport.module_path"
HIERARCHY_TAG = "modelexport.hierarchy_tag"


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


def package_hierarchy(path: str | Path) -> dict[str, Any]:
    """Module tree with node counts: the package's recorded summary, else recounted from the node tags."""
    metadata = read_export_metadata(Path(path)) if Path(path).is_dir() else None
    if metadata is not None:
        return metadata["hierarchy"]
    model_proto = load_graph(find_model_file(path))
    counts: Counter[str] = Counter()
    classes: dict[str, str] = {}
    nodes = 0
    for node in iter_nodes(model_proto.graph):
        tags = node_tags(node)
        nodes += 1
        if MODULE_PATH not in tags:
            continue
        counts[tags[MODULE_PATH]] += 1
        classes.update(_classes_from_tag(tags[MODULE_PATH], tags[HIERARCHY_TAG]))
    if not counts:
        raise ModelExportError(f"{path} has no modelexport hierarchy tags: export it with modelexport")
    return {
        "nodes": nodes,
        "tagged_nodes": sum(counts.values()),
        "root_fallback_nodes": counts.get("", 0),
        "tree": module_tree(counts, classes),
    }


def _classes_from_tag(module_path: str, tag: str) -> dict[str, str]:
    """Every (module path -> class) pair named along a hierarchy tag."""
    segments = tag.strip("/").split("/")
    classes = {"": segments[0]}
    path = ""
    for segment in segments[1:]:
        local, cls = segment.rsplit(":", 1)
        path = f"{path}.{local}" if path else local
        classes[path] = cls
    return classes
