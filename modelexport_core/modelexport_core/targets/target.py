"""`ExecutionTarget`: where a package runs, as a plugin registers it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ExecutionTarget:
    """Where a package runs: a name, its onnxruntime provider, and how to build a session for it.

    `build_session(model, options)` returns an `onnxruntime.InferenceSession` on the target (model: a path
    or serialized bytes; options: SessionOptions core has configured). `refused_ops` maps an op type the
    target never runs to the one-line reason given to the user. `export_rewrites` are graph rewrites that
    `export --target` applies (each takes the ModelProto, edits it in place, returns how many places it changed).
    `compile(model_path, output_path)`, when the target has one, writes an EP context model that loads without
    compiling again (and the binary files it refers to, beside it).
    """

    name: str
    provider: str
    is_available: Callable[[], bool]
    build_session: Callable[[str | bytes, Any], Any]
    install_hint: str = ""
    refused_ops: Mapping[str, str] = field(default_factory=dict)
    export_rewrites: tuple[Callable[[Any], int], ...] = ()
    compile: Callable[[Path, Path], None] | None = None
