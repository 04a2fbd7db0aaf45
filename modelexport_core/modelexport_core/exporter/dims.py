"""The dims of an export: named dims and per-input shapes (`--input-shape NAME=d0,d1,...`) as the user gave them,
checked against the modality and the model, with the modality's defaults for the rest."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.package.buckets import bucket_sizes
from modelexport_core.package.layout import DEFAULT_BATCH_SIZE
from modelexport_core.plugins.modality import Modality

EXAMPLE = "e.g. --input-shape input_ids=4,16"


def parse_input_shape(text: str) -> tuple[str, list[int]]:
    """`NAME=d0,d1,...` as (NAME, [d0, d1, ...]); every dim a positive integer."""
    name, _, dims = text.partition("=")
    try:
        shape = [int(d) for d in dims.split(",")]
    except ValueError:
        shape = []
    if not name.strip() or not shape or min(shape) < 1:
        raise ModelExportError(f"--input-shape '{text}' is not NAME=d0,d1,... of positive integers ({EXAMPLE})")
    return name.strip(), shape


def parse_input_shapes(texts: Sequence[str]) -> dict[str, list[int]]:
    """Every `--input-shape` option as {name: shape}; naming an input twice is an error."""
    shapes: dict[str, list[int]] = {}
    for text in texts:
        name, shape = parse_input_shape(text)
        if name in shapes:
            raise ModelExportError(f"--input-shape names {name} twice: give each input once")
        shapes[name] = shape
    return shapes


def named_dims(
    axes: Mapping[str, Mapping[int, str]], input_shapes: Mapping[str, Sequence[int]], explicit: Mapping[str, int]
) -> dict[str, int]:
    """The dims (by Optimum's axis names, e.g. `text_batch_size`) that per-input shapes fix, merged into `explicit`.

    `axes` is the OnnxConfig's `inputs`. Inputs sharing an axis name share its size (CLIP's `input_ids` and
    `attention_mask` both count `text_batch_size`), so two shapes, or a shape and an option like
    --batch-size, that give one axis two sizes are refused.
    """
    merged = dict(explicit)
    for name, shape in input_shapes.items():
        if name not in axes:
            raise ModelExportError(
                f"--input-shape names no input of this model: {name} (its inputs: {', '.join(axes)})"
            )
        for axis, dim in axes[name].items():
            if axis >= len(shape):
                raise ModelExportError(
                    f"--input-shape {name}={','.join(map(str, shape))} has {len(shape)} dims; "
                    f"{name} has at least {max(axes[name]) + 1}"
                )
            if merged.get(dim, shape[axis]) != shape[axis]:
                raise ModelExportError(
                    f"--input-shape {name} gives {dim} {shape[axis]} but another option gives it {merged[dim]}"
                )
            merged[dim] = shape[axis]
    return merged


def check_ranks(dummy: Mapping[str, Any], input_shapes: Mapping[str, Sequence[int]]) -> None:
    """Refuse a per-input shape whose rank or unnamed dims differ from the input the model takes."""
    for name, shape in input_shapes.items():
        made = list(getattr(dummy.get(name), "shape", shape))
        if made != list(shape):
            raise ModelExportError(
                f"--input-shape {name}={','.join(map(str, shape))} does not fit {name}, "
                f"which takes {len(made)} dims ({','.join(map(str, made))} here): only its named axes can change"
            )


@dataclass(frozen=True)
class ExportDims:
    """The dims of every graph of an export.

    `shapes`: the named dims of model.onnx (the largest graph); `explicit`: those the user asked for, which win
    over what Optimum's generators take from the config; `bucket_sizes`: the sizes of the modality's length
    dim, ascending, when it was given several, else []; `batch_sizes` likewise for the batch size. There is one
    graph per (batch size, length) pair.
    """

    shapes: dict[str, int]
    explicit: dict[str, int]
    input_shapes: dict[str, list[int]]
    length_dim: str | None
    bucket_sizes: list[int]
    batch_sizes: list[int] = field(default_factory=list)

    def graphs(self) -> list[tuple[int | None, int | None]]:
        """Every (batch size, length) pair but the largest, each None where that dim takes one size."""
        pairs = itertools.product(self.batch_sizes or [None], self.bucket_sizes or [None])
        largest = (max(self.batch_sizes, default=None), max(self.bucket_sizes, default=None))
        return [pair for pair in pairs if pair != largest]

    def at(self, batch: int | None, length: int | None) -> tuple[dict[str, int], dict[str, int]]:
        """(shapes, explicit) of the graph of this batch size and length (None: model.onnx's)."""
        changed = {"batch_size": batch} if batch is not None else {}
        if length is not None and self.length_dim is not None:
            changed[self.length_dim] = length
        return {**self.shapes, **changed}, {**self.explicit, **changed}


def resolve_dims(
    modality: Modality,
    onnx_config: Any,
    config: Any,
    requested: Mapping[str, int | Sequence[int] | None],
    input_shapes: Mapping[str, Sequence[int]],
    package_dir: Path,
) -> ExportDims:
    """The dims to export at: those asked for (checked), the modality's defaults for the rest, fitted to the model."""
    given = {dim: value for dim, value in requested.items() if value is not None}
    known = {*modality.dim_names, *(dim for axes in onnx_config.inputs.values() for dim in axes.values())}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ModelExportError(
            f"{unknown[0]} does not apply to {modality.name} models: their dims are {', '.join(sorted(known))}"
        )
    sizes = {dim: bucket_sizes(dim, value) for dim, value in given.items()}
    several = sorted(dim for dim, values in sizes.items() if len(values) > 1)
    bucketable = {"batch_size", modality.length_dim}
    wrong = [dim for dim in several if dim not in bucketable]
    if wrong:
        raise ModelExportError(
            f"{wrong[0]} takes one size: only the batch size and {modality.length_dim or 'no other dim'} of "
            f"{modality.name} models take several (shape buckets)"
        )
    batch_groups = {dim for axes in onnx_config.inputs.values() for dim in axes.values() if dim.endswith("batch_size")}
    if "batch_size" in several and len(batch_groups) > 1:
        raise ModelExportError(
            f"batch_size takes one size for a model with several batch axes ({', '.join(sorted(batch_groups))})"
        )
    explicit = named_dims(onnx_config.inputs, input_shapes, {dim: values[-1] for dim, values in sizes.items()})
    shapes = {"batch_size": DEFAULT_BATCH_SIZE, **modality.default_dims(package_dir), **explicit}
    shapes = modality.fit_dims(shapes, config, set(explicit))
    lengths = sizes[modality.length_dim] if modality.length_dim in several else []
    batches = sizes["batch_size"] if "batch_size" in several else []
    return ExportDims(
        shapes, explicit, {k: list(v) for k, v in input_shapes.items()}, modality.length_dim, lengths, batches
    )
