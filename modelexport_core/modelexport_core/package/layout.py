"""What a modelexport package holds: file names, model-level metadata keys and the I/O signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.message import DecodeError

from modelexport_core.errors import ModelExportError

MODEL_FILE = "model.onnx"
CONFIG_FILE = "config.json"
METADATA_FILE = "export_metadata.json"
SIGNATURE_FILE = "model.sig"  # an OpenSSF model-signing bundle (package/signing.py)
SCHEMA_VERSION = 1
DEFAULT_BATCH_SIZE = 1
EXTERNAL_DATA_THRESHOLD = 1_800_000_000  # bytes: protobuf's 2 GB limit, with headroom

KEY_VERSION = "modelexport.version"
KEY_TASK = "modelexport.task"
KEY_MODALITY = "modelexport.modality"
KEY_SHAPES = "modelexport.shapes"
KEY_DIM_NAMES = "modelexport.dim_names"


def load_graph(path: Path) -> onnx.ModelProto:
    """The model's graph and metadata, without reading external weight files."""
    try:
        return onnx.load(path, load_external_data=False)
    except DecodeError as err:
        raise ModelExportError(f"{path} is not a readable ONNX model (truncated or corrupt?): {err}") from err


def value_info_dims(value: onnx.ValueInfoProto) -> list[int | None]:
    """The dims of an input/output: an int where fixed, None where symbolic or unknown."""
    return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]


def io_signature(model_proto: onnx.ModelProto) -> dict[str, list[dict[str, Any]]]:
    """Inputs and outputs with their dims and element types."""

    def describe(values: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": v.name,
                "shape": value_info_dims(v),
                "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
            }
            for v in values
        ]

    initializers = {i.name for i in model_proto.graph.initializer}
    return {
        "inputs": describe([i for i in model_proto.graph.input if i.name not in initializers]),
        "outputs": describe(model_proto.graph.output),
    }


def set_model_metadata(model_proto: onnx.ModelProto, values: dict[str, str]) -> None:
    """Set model-level metadata_props, replacing keys that already exist."""
    kept = [p for p in model_proto.metadata_props if p.key not in values]
    del model_proto.metadata_props[:]
    model_proto.metadata_props.extend(kept)
    for key, value in values.items():
        model_proto.metadata_props.add(key=key, value=value)


def model_metadata(model_proto: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model_proto.metadata_props}


def read_export_metadata(package_dir: Path) -> dict[str, Any] | None:
    """The package's export_metadata.json, or None when there is none."""
    path = package_dir / METADATA_FILE
    if not path.is_file():
        return None
    try:
        metadata = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelExportError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(metadata, dict) or not isinstance(metadata.get("files", []), list):
        raise ModelExportError(f"{path} is not an export metadata object (a JSON object with a files list)")
    return metadata


def find_model_file(path: str | Path) -> Path:
    """Accept a package directory or a path to its model.onnx; return the model file (of the package a lone
    model.onnx embeds, written out: `single_file.served_model_file`)."""
    path = Path(path)
    model_file = path / MODEL_FILE if path.is_dir() else path
    if not model_file.is_file():
        raise ModelExportError(f"No ONNX model at {model_file}: pass a package directory or its model.onnx")
    from modelexport_core.package.single_file import served_model_file  # imports this module

    return served_model_file(model_file)


def package_task(package_dir: Path) -> str:
    """The task a package was exported for (from its metadata, else the model's metadata_props)."""
    metadata = read_export_metadata(package_dir) or {}
    task = metadata.get("task") or model_metadata(load_graph(package_dir / MODEL_FILE)).get(KEY_TASK)
    if not task:
        raise ModelExportError(f"{package_dir} does not record its task: it was not exported by modelexport")
    return task
