"""Saving several ONNX models that share one external weights file, each tensor stored once by its content."""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx
from onnx import numpy_helper

WEIGHTS_FILE = "model.onnx.data"
_INLINE_BELOW = 1024  # bytes: small constants (shapes, scalars) stay in their graph
_ALIGNMENT = 64


def _tensor_bytes(tensor: onnx.TensorProto) -> bytes:
    """The little-endian raw bytes of a tensor, whichever field holds them."""
    if tensor.HasField("raw_data"):
        return tensor.raw_data
    return numpy_helper.to_array(tensor).tobytes()


def _point_to(tensor: onnx.TensorProto, offset: int, length: int) -> None:
    """Make `tensor` read its data from WEIGHTS_FILE[offset : offset + length]."""
    dims, data_type, name = list(tensor.dims), tensor.data_type, tensor.name
    tensor.Clear()
    tensor.name, tensor.data_type = name, data_type
    tensor.dims.extend(dims)
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", WEIGHTS_FILE), ("offset", str(offset)), ("length", str(length))):
        tensor.external_data.add(key=key, value=value)


def save_sharing_weights(models: dict[str, onnx.ModelProto], directory: Path) -> dict[str, int]:
    """Save each model as `directory/<name>` with its large initializers in one WEIGHTS_FILE.

    Tensors are shared by content, not by name: the exporter folds constants per shape, so one name may
    hold different values in two graphs, and two names the same value. Returns the bytes written and saved
    by sharing.
    """
    offsets: dict[bytes, tuple[int, int]] = {}
    written = shared = 0
    with (directory / WEIGHTS_FILE).open("wb") as weights:
        for name, model in models.items():
            for tensor in model.graph.initializer:
                data = _tensor_bytes(tensor)
                if len(data) < _INLINE_BELOW:
                    continue
                key = hashlib.sha256(data).digest()
                if key in offsets:
                    shared += len(data)
                else:
                    weights.write(b"\0" * (-written % _ALIGNMENT))
                    written += -written % _ALIGNMENT
                    offsets[key] = (written, len(data))
                    weights.write(data)
                    written += len(data)
                _point_to(tensor, *offsets[key])
            onnx.save(model, directory / name)
    return {"weights_bytes": written, "shared_bytes": shared}
