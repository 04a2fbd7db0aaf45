"""Per-input fixed shapes (`--input-shape NAME=d0,d1,...`): parsing them, and the named dims they fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ModelExportError

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
