"""Binding export_metadata.json to the graphs it describes: each graph records the digest of the metadata.

The metadata lists every file with its sha256, graphs included, so no graph can hold the digest of all of it:
the digest covers the metadata with the graphs' sizes and hashes left out (their paths stay in). Editing any
recorded fact (task, shapes, a file entry) then breaks the digest, and swapping a graph breaks its sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import onnx

from modelexport_core.package.files import sha256_of
from modelexport_core.package.layout import METADATA_FILE, MODEL_FILE, load_graph, model_metadata, set_model_metadata
from modelexport_core.package.single_file import embed_package_files

KEY_METADATA_DIGEST = "modelexport.metadata_sha256"


def _is_graph(entry: dict[str, Any]) -> bool:
    return str(entry.get("path", "")).endswith(".onnx")


def canonical_metadata(metadata: dict[str, Any]) -> str:
    """The metadata as canonical JSON, each graph's entry reduced to its path."""
    files = [{"path": entry.get("path")} if _is_graph(entry) else entry for entry in metadata.get("files", [])]
    return json.dumps({**metadata, "files": files}, sort_keys=True, separators=(",", ":"))


def metadata_digest(metadata: dict[str, Any]) -> str:
    """sha256 of the canonical metadata."""
    return hashlib.sha256(canonical_metadata(metadata).encode()).hexdigest()


def bind_graphs(package_dir: Path, metadata: dict[str, Any]) -> None:
    """Record the metadata's digest in every graph it lists (model.onnx embeds the package's other files too:
    `single_file.py`), then the graphs' new sizes and sha256 in it."""
    canonical = canonical_metadata(metadata)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    for entry in filter(_is_graph, metadata["files"]):
        path = package_dir / entry["path"]
        graph = load_graph(path)  # the weights stay where they are
        set_model_metadata(graph, {KEY_METADATA_DIGEST: digest})
        if entry["path"] == MODEL_FILE:
            embed_package_files(graph, package_dir, canonical)
        onnx.save(graph, path)
        entry.update(size=path.stat().st_size, sha256=sha256_of(path))


def write_bound_metadata(package_dir: Path, metadata: dict[str, Any]) -> None:
    """Bind the graphs to `metadata` (`bind_graphs`), then write it as export_metadata.json, atomically."""
    bind_graphs(package_dir, metadata)
    partial = package_dir / f".{METADATA_FILE}.partial"
    partial.write_text(json.dumps(metadata, indent=2))
    os.replace(partial, package_dir / METADATA_FILE)


def check_bound(package_dir: Path, metadata: dict[str, Any]) -> str:
    """Every graph the metadata lists records the metadata's digest; call it after the files' hashes matched."""
    digest = metadata_digest(metadata)
    graphs = [entry["path"] for entry in metadata["files"] if _is_graph(entry)]
    for name in graphs:
        recorded = model_metadata(load_graph(package_dir / name)).get(KEY_METADATA_DIGEST)
        if recorded is None:
            raise AssertionError(f"{name} records no digest of {METADATA_FILE} (exported by an older modelexport?)")
        if recorded != digest:
            raise AssertionError(f"{METADATA_FILE} was edited after export: {name} records another digest of it")
    return f"{METADATA_FILE} matches the digest recorded in {', '.join(graphs)}"
