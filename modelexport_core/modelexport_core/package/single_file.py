"""Single-file packages: model.onnx carries what serving needs, so a lone copy of it serves and unpacks.

At export, model.onnx's metadata_props receive the package's small files (config, tokenizer or preprocessor
files; base64) and export_metadata.json in the canonical form its recorded digest covers (`binding.py`). Reading
them back checks that digest, then each file's sha256 as that metadata lists it: a tampered file is a one-line
error. Graphs and weights are not embedded: a lone model.onnx of a bucketed package (its weights in
model.onnx.data) needs that file beside it, and serves the buckets found beside it.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import onnx

from modelexport_core.errors import ModelExportError
from modelexport_core.package.files import sha256_of, staged_directory
from modelexport_core.package.layout import (
    CONFIG_FILE,
    METADATA_FILE,
    MODEL_FILE,
    load_graph,
    model_metadata,
    set_model_metadata,
)

KEY_EMBEDDED_FILES = "modelexport.embedded_files"  # JSON {path: base64 of the file}
KEY_EMBEDDED_METADATA = "modelexport.embedded_metadata"  # canonical export_metadata.json (binding.canonical_metadata)
_materialized: dict[tuple[str, int, int], Path] = {}


def is_graph_or_weights(path: str) -> bool:
    """Graphs and weight files travel as files; everything else of a package is embedded in model.onnx."""
    return path.endswith((".onnx", ".data")) or "/" in path


def embed_package_files(graph: onnx.ModelProto, package_dir: Path, canonical: str) -> None:
    """Embed in `graph` the package's files that are neither graphs nor weights, and its canonical metadata."""
    files = json.loads(canonical)["files"]
    embedded = {
        entry["path"]: base64.b64encode((package_dir / entry["path"]).read_bytes()).decode("ascii")
        for entry in files
        if not is_graph_or_weights(entry["path"])
    }
    set_model_metadata(graph, {KEY_EMBEDDED_FILES: json.dumps(embedded), KEY_EMBEDDED_METADATA: canonical})


def embedded_package(model_file: Path) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """The metadata and files model.onnx embeds (both checked), or None when it embeds none."""
    from modelexport_core.package.binding import KEY_METADATA_DIGEST

    props = model_metadata(load_graph(model_file))
    if KEY_EMBEDDED_METADATA not in props:
        return None
    canonical = props[KEY_EMBEDDED_METADATA]
    if hashlib.sha256(canonical.encode()).hexdigest() != props.get(KEY_METADATA_DIGEST):
        raise ModelExportError(f"{model_file}: its embedded {METADATA_FILE} does not match its recorded digest")
    metadata = json.loads(canonical)
    embedded = {path: base64.b64decode(data) for path, data in json.loads(props[KEY_EMBEDDED_FILES]).items()}
    for entry in metadata["files"]:
        data = embedded.get(entry["path"])
        if data is not None and hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ModelExportError(f"{model_file}: its embedded {entry['path']} does not match its recorded sha256")
    return metadata, embedded


def unpack(model_file: Path, out_dir: Path, force: bool = False) -> dict[str, Any]:
    """Write the full package model.onnx embeds into `out_dir` (graphs and weights copied from beside it; every
    one the package lists must be there); its export_metadata.json."""
    if not model_file.is_file():
        raise ModelExportError(f"No ONNX model at {model_file}: pass a model.onnx exported by modelexport")
    found = embedded_package(model_file)
    if found is None:
        raise ModelExportError(
            f"{model_file} embeds no package: it was exported by another tool or an older modelexport"
        )
    with staged_directory(out_dir, force) as staging:
        _write_package(model_file, *found, staging, link=False, complete=True)
    return found[0]


def served_model_file(model_file: Path) -> Path:
    """`model_file`, or for a lone model.onnx (no config.json or metadata beside it) that embeds its package, the
    model.onnx of that package written to a temporary directory (linked, removed at exit) once per process."""
    directory = model_file.parent
    beside = (directory / METADATA_FILE).is_file() or (directory / CONFIG_FILE).is_file()
    if beside or model_file.suffix != ".onnx":  # a package, or an ORT-format model
        return model_file
    stat = model_file.stat()
    key = (str(model_file.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _materialized:
        found = embedded_package(model_file)
        if found is None:
            return model_file
        target = Path(tempfile.mkdtemp(prefix="modelexport-lone-"))
        atexit.register(shutil.rmtree, target, True)
        _write_package(model_file, *found, target, link=True, complete=False)
        _materialized[key] = target / MODEL_FILE
    return _materialized[key]


def _write_package(
    model_file: Path,
    metadata: dict[str, Any],
    embedded: dict[str, bytes],
    directory: Path,
    *,
    link: bool,
    complete: bool,
) -> None:
    """The embedded files, the graphs and weights found beside `model_file`, and the metadata with each present
    graph's size and sha256 restored. Missing weights are an error; missing graphs too when `complete`."""
    for path, data in embedded.items():
        (directory / path).write_bytes(data)
    sources = {
        entry["path"]: model_file.parent / entry["path"] for entry in metadata["files"] if entry["path"] not in embedded
    }
    sources[MODEL_FILE] = model_file
    missing = [p for p, source in sources.items() if not source.is_file() and (complete or p.endswith(".data"))]
    if missing:
        raise ModelExportError(
            f"{model_file} keeps part of its package in other files: copy {', '.join(missing)} beside it"
        )
    for path, source in sources.items():
        if source.is_file():
            _place(source, directory / path, link)
    for entry in metadata["files"]:
        if "sha256" not in entry and (directory / entry["path"]).is_file():
            entry.update(size=(directory / entry["path"]).stat().st_size, sha256=sha256_of(directory / entry["path"]))
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2))


def _place(source: Path, destination: Path, link: bool) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(source, destination)
            return
        except OSError:  # another filesystem: a copy
            pass
    shutil.copyfile(source, destination)
