"""Read the hierarchy of a package back: from its metadata, else recounted from the tagged model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.package.hierarchy import HIERARCHY_TAG, MODULE_PATH, iter_nodes, module_tree, node_tags
from modelexport_core.package.layout import find_model_file, load_graph, read_export_metadata


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
