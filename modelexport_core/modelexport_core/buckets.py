"""Shape buckets: a package holding one fixed-shape graph per sequence length, and running each batch on the
smallest graph that holds its longest input."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelExportError
from .package import MODEL_FILE, io_signature, load_graph, model_metadata, read_export_metadata

if TYPE_CHECKING:
    import torch

KEY_BUCKETS = "modelexport.buckets"
BUCKET_DIM = "sequence_length"
InputShapes = dict[str, list[int | None]]
Axes = list[tuple[int, int, int]]  # (axis, bucket size, full size)


def bucket_lengths(sequence_length: int | Sequence[int] | None) -> list[int]:
    """The requested sequence lengths, sorted and unique ([] when none was asked for)."""
    if sequence_length is None:
        return []
    lengths = [sequence_length] if isinstance(sequence_length, int) else list(sequence_length)
    if not lengths or any(not isinstance(n, int) or n < 1 for n in lengths):
        raise ModelExportError(f"Sequence lengths must be positive integers, got {sequence_length!r}")
    return sorted(set(lengths))


def parse_lengths(text: str | None) -> list[int] | None:
    """`16,32,64` -> [16, 32, 64]; a user error for anything else."""
    if text is None:
        return None
    try:
        return bucket_lengths([int(part) for part in text.split(",")])
    except ValueError:
        raise ModelExportError(
            f"--sequence-length takes a length or a comma-separated list of lengths (e.g. 16,32,64,128), not {text!r}"
        ) from None


def bucket_file(length: int, largest: int) -> str:
    """The file of a bucket: the largest is model.onnx, so Optimum loads the package unchanged."""
    return MODEL_FILE if length == largest else f"model_seq{length}.onnx"


def read_buckets(model_file: Path, source: str) -> dict[str, InputShapes]:
    """The package's buckets (file -> input shapes) from the source its shapes came from; {} if none."""
    if source == "export_metadata":
        return (read_export_metadata(model_file.parent) or {}).get("buckets", {})
    if source == "metadata_props":
        return json.loads(model_metadata(load_graph(model_file)).get(KEY_BUCKETS, "{}"))
    return {}


def _varying_axes(small: list[dict[str, Any]], full: list[dict[str, Any]]) -> dict[str, Axes]:
    """Per tensor name, the (axis, bucket size, full size) where a bucket's dims differ from the full model's."""
    sizes = {v["name"]: v["shape"] for v in full}
    return {
        v["name"]: [
            (axis, dim, sizes[v["name"]][axis]) for axis, dim in enumerate(v["shape"]) if dim != sizes[v["name"]][axis]
        ]
        for v in small
    }


def serve_buckets(model: Any, model_file: Path, buckets: dict[str, dict[str, int]], load: Callable[[str], Any]) -> Any:
    """The model itself, or a BucketedModel over it when the package holds several sequence lengths."""
    by_length = {dims[BUCKET_DIM]: file for file, dims in buckets.items() if BUCKET_DIM in dims}
    if len(by_length) < 2 or model_file.name != MODEL_FILE:
        return model
    return BucketedModel(model, model_file, by_length, load)


class BucketedModel:
    """An ORTModel stand-in that runs each call on the smallest bucket holding its longest input.

    The longest input is read from the attention mask (right padding). Inputs padded to that bucket's length
    run as they are; inputs of the full length are cut to the bucket's and outputs whose shape follows it are
    padded back with zeros, so the caller sees the full model's shapes.
    Bucket models are loaded on first use; `runs` counts the calls each bucket length served. Every other
    attribute is the full model's.
    """

    def __init__(self, model: Any, model_file: Path, buckets: dict[int, str], load: Callable[[str], Any]) -> None:
        self.model = model
        self.model_file = model_file
        self.lengths = sorted(buckets)
        self.files = buckets
        self._load = load
        self.runs: Counter[int] = Counter()
        self._loaded: dict[int, tuple[Any, dict[str, Axes], dict[str, Axes]]] = {}

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "runs", "_loaded"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def bucket_for(self, attention_mask: torch.Tensor | None) -> int:
        """The smallest bucket length holding every real (unmasked) token of the batch."""
        if attention_mask is None or attention_mask.dim() != 2:
            return self.lengths[-1]
        columns = attention_mask.bool().any(dim=0).nonzero()
        needed = int(columns[-1]) + 1 if len(columns) else 1
        return next((length for length in self.lengths if length >= needed), self.lengths[-1])

    def _bucket(self, length: int) -> tuple[Any, dict[str, Axes], dict[str, Axes]]:
        if length not in self._loaded:
            small = io_signature(load_graph(self.model_file.parent / self.files[length]))
            full = io_signature(load_graph(self.model_file))
            self._loaded[length] = (
                self._load(self.files[length]),
                _varying_axes(small["inputs"], full["inputs"]),
                _varying_axes(small["outputs"], full["outputs"]),
            )
        return self._loaded[length]

    def __call__(self, **inputs: Any) -> Any:
        length = self.bucket_for(inputs.get("attention_mask"))
        self.runs[length] += 1
        if length == self.lengths[-1]:
            return self.model(**inputs)
        model, input_axes, output_axes = self._bucket(length)
        mask = inputs.get("attention_mask")
        if mask is not None and mask.shape[-1] == length:  # padded to the bucket already (a bucket-fitting processor)
            return model(**inputs)
        cut = {name: _cut(value, input_axes.get(name, [])) for name, value in inputs.items()}
        outputs = model(**cut)
        return type(outputs)(
            **{
                name: _pad_back(value, output_axes.get(name, []))
                for name, value in outputs.items()
                if value is not None
            }
        )

    forward = __call__


def _cut(value: Any, axes: Axes) -> Any:
    for axis, size, _ in axes:
        value = value.narrow(axis, 0, size).contiguous()
    return value


def _pad_back(value: torch.Tensor, axes: Axes) -> torch.Tensor:
    import torch

    for axis, _, size in axes:
        shape = list(value.shape)
        shape[axis] = size - shape[axis]
        value = torch.cat([value, value.new_zeros(shape)], dim=axis)
    return value
