"""The dims of an export: named dims and per-input shapes (`--input-shape NAME=d0,d1,...`) as the user gave them,
checked against the modality and the model, with the modality's defaults for the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    dim, ascending, when it was given several (one graph each), else [].
    """

    shapes: dict[str, int]
    explicit: dict[str, int]
    input_shapes: dict[str, list[int]]
    length_dim: str | None
    bucket_sizes: list[int]

    def at_size(self, size: int) -> tuple[dict[str, int], dict[str, int]]:
        """(shapes, explicit) of the graph whose length dim is `size`."""
        assert self.length_dim is not None
        return {**self.shapes, self.length_dim: size}, {**self.explicit, self.length_dim: size}


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
    wrong = [dim for dim in several if dim != modality.length_dim]
    if wrong:
        raise ModelExportError(
            f"{wrong[0]} takes one size: only {modality.length_dim or 'no dim'} of {modality.name} models "
            "takes several (shape buckets)"
        )
    explicit = named_dims(onnx_config.inputs, input_shapes, {dim: values[-1] for dim, values in sizes.items()})
    shapes = {"batch_size": DEFAULT_BATCH_SIZE, **modality.default_dims(package_dir), **explicit}
    shapes = modality.fit_dims(shapes, config, set(explicit))
    buckets = sizes[several[0]] if several else []
    return ExportDims(shapes, explicit, {k: list(v) for k, v in input_shapes.items()}, modality.length_dim, buckets)
