"""Shape buckets in a package: one fixed-shape graph per size of the modality's length dim, how they are named
and where they are listed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from modelexport_core.errors import ModelExportError
from modelexport_core.package.layout import MODEL_FILE, load_graph, model_metadata, read_export_metadata

KEY_BUCKETS = "modelexport.buckets"
InputShapes = dict[str, list[int | None]]


def bucket_sizes(dim: str, value: int | Sequence[int]) -> list[int]:
    """The sizes asked for a dim (one, or several: shape buckets), sorted and unique."""
    sizes = [value] if isinstance(value, int) else list(value)
    if not sizes or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in sizes):
        raise ModelExportError(f"{dim} takes positive integers, got {value!r}")
    return sorted(set(sizes))


def parse_sizes(text: str | None, option: str, noun: str = "length", example: str = "16,32,64,128") -> list[int] | None:
    """`16,32,64` -> [16, 32, 64] for the CLI `option`; a user error for anything else."""
    if text is None:
        return None
    try:
        return bucket_sizes(option, [int(part) for part in text.split(",")])
    except ValueError:
        raise ModelExportError(
            f"{option} takes a {noun} or a comma-separated list of {noun}s (e.g. {example}), not {text!r}"
        ) from None


def bucket_file(batch: int | None, length: int | None) -> str:
    """The file of a bucket other than the largest (model.onnx, so Optimum loads the package unchanged), named by
    the dims that vary between buckets (None: one size): model_b1_seq16.onnx, model_seq16.onnx, model_b1.onnx."""
    parts = [f"b{batch}" if batch is not None else "", f"seq{length}" if length is not None else ""]
    return "_".join(["model", *filter(None, parts)]) + ".onnx"


def graph_files(model_file: Path) -> list[str]:
    """The package's graphs: model.onnx (named as given), then each other shape bucket's."""
    buckets = read_buckets(model_file, "metadata_props")
    return [model_file.name, *(name for name in buckets if name != MODEL_FILE)]


def read_buckets(model_file: Path, source: str) -> dict[str, InputShapes]:
    """The package's buckets (file -> input shapes) from the source its shapes came from; {} if none."""
    if source == "export_metadata":
        return (read_export_metadata(model_file.parent) or {}).get("buckets", {})
    if source == "metadata_props":
        return json.loads(model_metadata(load_graph(model_file)).get(KEY_BUCKETS, "{}"))
    return {}
