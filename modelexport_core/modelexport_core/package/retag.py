"""Hierarchy tags for nodes a later pass created (e.g. quantization): taken from the nodes they replace."""

from __future__ import annotations

import onnx

from modelexport_core.package.hierarchy import HIERARCHY_TAG, MODULE_PATH, iter_nodes, node_tags


def _name_source(name: str, tagged: dict[str, dict[str, str]]) -> dict[str, str] | None:
    """The tags of the longest original node name that `name` extends with `_...` (`X` -> `X_quant`)."""
    parts = name.split("_")
    for end in range(len(parts) - 1, 0, -1):
        found = tagged.get("_".join(parts[:end]))
        if found is not None:
            return found
    return None


def retag(model: onnx.ModelProto, original: onnx.ModelProto) -> int:
    """Tag every untagged node of `model`: by the original node its name extends, else by a tagged consumer
    of its outputs or producer of its inputs (repeated until stable), else as the root. Returns how many."""
    tagged = {node.name: _tags(node) for node in iter_nodes(original.graph) if MODULE_PATH in node_tags(node)}
    nodes = list(iter_nodes(model.graph))
    pending = [node for node in nodes if MODULE_PATH not in node_tags(node)]
    count = len(pending)
    for node in pending[:]:
        found = _name_source(node.name, tagged)
        if found is not None:
            _add(node, found)
            pending.remove(node)
    while pending:
        by_tensor: dict[str, dict[str, str]] = {}
        for node in nodes:
            if MODULE_PATH in node_tags(node):
                for tensor in (*node.input, *node.output):
                    by_tensor.setdefault(tensor, _tags(node))
        resolved = [node for node in pending if any(t in by_tensor for t in (*node.output, *node.input))]
        if not resolved:
            break
        for node in resolved:
            _add(node, next(by_tensor[t] for t in (*node.output, *node.input) if t in by_tensor))
            pending.remove(node)
    any_tag = next(iter(tagged.values()), {}).get(HIERARCHY_TAG, "/")
    root = {MODULE_PATH: "", HIERARCHY_TAG: "/" + any_tag.split("/")[1]}
    for node in pending:
        _add(node, root)
    return count


def _tags(node: onnx.NodeProto) -> dict[str, str]:
    return {k: v for k, v in node_tags(node).items() if k in (MODULE_PATH, HIERARCHY_TAG)}


def _add(node: onnx.NodeProto, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        node.metadata_props.add(key=key, value=value)
