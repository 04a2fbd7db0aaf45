"""`modelexport compile`: a package's graphs precompiled for a target (EP context models), listed in its
metadata, so sessions on that target load without compiling again."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from modelexport_core.errors import ModelExportError, named_first_line
from modelexport_core.package.binding import write_bound_metadata
from modelexport_core.package.buckets import graph_files
from modelexport_core.package.files import describe_files
from modelexport_core.package.integrity import intact_metadata
from modelexport_core.package.layout import MODEL_FILE
from modelexport_core.targets.target import ExecutionTarget

COMPILED_DIR = "compiled"


def compiled_graph(model_file: Path, target: ExecutionTarget) -> Path | None:
    """The package's compiled version of `model_file` for `target`, when it has one."""
    compiled = model_file.parent / COMPILED_DIR / target.name / _context_name(model_file.name)
    return compiled if compiled.is_file() else None


def _context_name(graph: str) -> str:
    """`model_seq16.onnx` -> `model_seq16_ctx.onnx` (a second `model.onnx` would make Optimum hesitate)."""
    return graph.removesuffix(".onnx") + "_ctx.onnx"


def compile_package(package: str | Path, target: ExecutionTarget) -> list[str]:
    """Compile every graph of an intact package (model.onnx and its shape buckets) for `target` into
    `compiled/<target>/`, list the files with their sha256 in export_metadata.json (bound to the graphs again);
    the paths written. `model.onnx` stays the portable graph."""
    package = Path(package)
    metadata = intact_metadata(package, "compiled")
    if target.compile is None:
        raise ModelExportError(f"The {target.name} target has nothing to compile: its sessions build as they load")
    destination = package / COMPILED_DIR / target.name
    _compile_into(destination, package, graph_files(package / MODEL_FILE), target)
    prefix = f"{COMPILED_DIR}/{target.name}/"
    written = [{**e, "path": prefix + str(e["path"])} for e in describe_files(destination)]
    metadata["files"] = [e for e in metadata["files"] if not str(e["path"]).startswith(prefix)] + written
    metadata.setdefault("compiled", {})[target.name] = [entry["path"] for entry in written]
    write_bound_metadata(package, metadata)
    return [str(entry["path"]) for entry in written]


def _compile_into(destination: Path, package: Path, graphs: list[str], target: ExecutionTarget) -> None:
    """Every graph compiled into a staging directory that replaces `destination` once all are done."""
    destination.parent.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=destination.parent))
    try:
        for graph in graphs:
            try:
                target.compile(package / graph, staging / _context_name(graph))
            except Exception as err:  # the target refuses a node, its SDK fails
                raise ModelExportError(f"Cannot compile {graph} for {target.name}: {named_first_line(err)}") from err
        shutil.rmtree(destination, ignore_errors=True)
        staging.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
