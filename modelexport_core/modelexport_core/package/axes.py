"""Batch axes: which axes of a model's inputs and outputs count samples, grouped by what they count.

Most models have one batch axis, axis 0 of every input and output. A multimodal model may have several
independent ones (CLIP: images in `pixel_values`, candidate texts in `input_ids`, `logits_per_image` is
[images, texts]). An export records the axis names of Optimum's OnnxConfig (`dim_names`); an axis whose name
ends with `batch_size` is a batch axis, and axes of the same name count the same thing.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelexport_core.package.layout import KEY_DIM_NAMES, load_graph, model_metadata, read_export_metadata

DEFAULT_GROUP = "batch_size"
BATCH_SUFFIX = "batch_size"

DimNames = dict[str, dict[str, str]]  # input/output name -> {axis (as a string, JSON keys are): axis name}


@dataclass(frozen=True)
class BatchAxes:
    """The fixed size of each batch (by name), the batch axis 0 of each input counts, each output's batch axes.

    Inputs and outputs not listed have one batch axis, axis 0, of the default group `batch_size`.
    """

    sizes: dict[str, int]
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, dict[int, str]] = field(default_factory=dict)

    @classmethod
    def single(cls, batch_size: int) -> BatchAxes:
        """One batch axis, axis 0 of everything, fixed at `batch_size`."""
        return cls({DEFAULT_GROUP: batch_size})

    def input_group(self, name: str) -> str:
        return self.inputs.get(name, DEFAULT_GROUP)

    def output_axes(self, name: str) -> dict[int, str]:
        return self.outputs.get(name, {0: DEFAULT_GROUP})

    def counts(self, arrays: Mapping[str, Any]) -> dict[str, int]:
        """The number of rows of each batch the arrays hold; a ValueError when the inputs of one batch disagree
        or an input counts a batch the model does not declare."""
        rows: dict[str, set[int]] = {}
        for name, value in arrays.items():
            rows.setdefault(self.input_group(name), set()).add(value.shape[0])
        disagreeing = {group: sorted(found) for group, found in rows.items() if len(found) != 1}
        if disagreeing:
            raise ValueError(f"inputs disagree on the batch size: {disagreeing}")
        unknown = set(rows) - set(self.sizes)
        if unknown:
            raise ValueError(f"inputs with batch axes {sorted(unknown)} the model does not declare")
        return {group: found.pop() for group, found in rows.items()}

    def chunks(self, counts: Mapping[str, int]) -> dict[str, int]:
        """How many fixed-size blocks each batch takes."""
        return {group: -(-count // self.sizes[group]) for group, count in counts.items()}

    def blocks(self, arrays: Mapping[str, Any], counts: Mapping[str, int]) -> Iterator[tuple[tuple[int, ...], Any]]:
        """Every combination of fixed-size blocks along each batch (its block index per batch, and the arrays cut
        to it), the last block of a batch padded by repeating its last row; numpy arrays or torch tensors."""
        chunks = self.chunks(counts)
        for combination in itertools.product(*(range(n) for n in chunks.values())):
            index = dict(zip(chunks, combination, strict=True))
            block = {}
            for name, value in arrays.items():
                group = self.input_group(name)
                start, size = index[group] * self.sizes[group], self.sizes[group]
                block[name] = padded_rows(value[start : start + size], size)
            yield combination, block


def dim_names_of(axes: dict[str, dict[int, str]]) -> DimNames:
    """Optimum's `inputs` / `outputs` axes as JSON-ready dim names."""
    return {name: {str(axis): dim for axis, dim in named.items()} for name, named in axes.items()}


def recorded_dim_names(model_file: Path) -> DimNames | None:
    """The dim names of every input and output a package records (export_metadata.json, else the graph)."""
    metadata = read_export_metadata(model_file.parent) or {}
    if "dim_names" in metadata:
        return metadata["dim_names"]
    props = model_metadata(load_graph(model_file))
    return json.loads(props[KEY_DIM_NAMES]) if KEY_DIM_NAMES in props else None


def batch_axes(model_file: Path, input_shapes: dict[str, list[int | None]], batch_size: int) -> BatchAxes:
    """The batch axes a package records (`dim_names`), sized from its input shapes; else one axis of `batch_size`."""
    try:
        dim_names = recorded_dim_names(model_file)
    except Exception:  # an unreadable model describes no axes: one batch
        dim_names = None
    if not dim_names:
        return BatchAxes.single(batch_size)
    inputs = {
        name: named["0"]
        for name, named in dim_names.items()
        if name in input_shapes and named.get("0", "").endswith(BATCH_SUFFIX)
    }
    sizes = {group: input_shapes[name][0] or batch_size for name, group in inputs.items()}
    outputs = {
        name: {int(axis): dim for axis, dim in named.items() if dim in sizes}
        for name, named in dim_names.items()
        if name not in input_shapes
    }
    return BatchAxes(sizes or {DEFAULT_GROUP: batch_size}, inputs, outputs)


def padded_rows(rows: Any, size: int) -> Any:
    """`rows` (a numpy array or torch tensor) with its last row repeated up to `size` rows."""
    count = rows.shape[0]
    return rows if count >= size else rows[[*range(count), *[count - 1] * (size - count)]]
