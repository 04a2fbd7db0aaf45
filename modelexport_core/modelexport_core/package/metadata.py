"""The contents of export_metadata.json (versioned by `schema_version`)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import onnx

from modelexport_core.package.layout import SCHEMA_VERSION

_LIBRARIES = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "modelexport-core")


def library_versions() -> dict[str, str | None]:
    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {name: installed(name) for name in _LIBRARIES}


def build_metadata(
    *,
    source: str,
    task: str,
    modality: str,
    model_proto: onnx.ModelProto,
    signature: dict[str, Any],
    hierarchy: dict[str, Any],
    files: list[dict[str, Any]],
    timings: dict[str, float],
    dim_names: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Everything a later reader needs to trust and serve the package."""
    return {
        "schema_version": SCHEMA_VERSION,
        "source_model": source,
        "task": task,
        "modality": modality,
        "versions": library_versions(),
        "onnx": {
            "opset": next((o.version for o in model_proto.opset_import if o.domain in ("", "ai.onnx")), None),
            "ir_version": model_proto.ir_version,
        },
        "inputs": signature["inputs"],
        "outputs": signature["outputs"],
        "shapes": {i["name"]: i["shape"] for i in signature["inputs"]},
        "dim_names": dim_names or {},
        "hierarchy": hierarchy,
        "files": files,
        "timings": dict(timings),
    }
