"""Serving shape buckets: each batch on the smallest graph that holds it along the modality's length dim.

`Buckets` chooses the graph and cuts inputs to it (numpy arrays or torch tensors: the int8 gate simulates
what `BucketedModel` serves); `BucketedModel` is the ORTModel stand-in `create_pipeline` runs.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modelexport_core.package.layout import io_signature, load_graph

Shapes = dict[str, list[int]]  # tensor name -> fixed shape


class Buckets:
    """The graphs of a bucketed package: their size along the length dim, and their input and output shapes.

    `mask_input` (the modality's) marks the real positions of a batch padded beyond them (right padding).
    """

    def __init__(self, lengths: Mapping[str, int], signatures: Mapping[str, dict], mask_input: str | None) -> None:
        self.order = sorted(lengths, key=lengths.__getitem__)
        self.lengths = dict(lengths)
        self.inputs = {name: _shapes(signatures[name]["inputs"]) for name in self.order}
        self.outputs = {name: _shapes(signatures[name]["outputs"]) for name in self.order}
        self.mask_input = mask_input

    @property
    def largest(self) -> str:
        return self.order[-1]

    def matching(self, inputs: Mapping[str, Any]) -> str | None:
        """The graph whose input shapes are exactly those of `inputs`, if any."""
        shapes = {name: list(value.shape) for name, value in inputs.items() if hasattr(value, "shape")}
        return next((g for g in self.order if all(shapes.get(k, s) == s for k, s in self.inputs[g].items())), None)

    def holding(self, inputs: Mapping[str, Any]) -> str:
        """The smallest graph holding the batch: its real length (from the mask input), else its exact shapes."""
        mask = inputs.get(self.mask_input) if self.mask_input else None
        if mask is None or len(mask.shape) != 2:
            return self.matching(inputs) or self.largest
        real = np.flatnonzero(np.asarray(mask).any(axis=0))
        needed = int(real[-1]) + 1 if len(real) else 1
        return next((g for g in self.order if self.lengths[g] >= needed), self.largest)

    def cut(self, inputs: Mapping[str, Any], graph: str) -> dict[str, Any]:
        """`inputs` cut to the graph's input shapes (each dim from its start)."""
        shapes = self.inputs[graph]
        return {
            k: _contiguous(v[tuple(slice(0, d) for d in shapes[k])]) if k in shapes else v for k, v in inputs.items()
        }


class BucketedModel:
    """An ORTModel stand-in that runs each call on the smallest bucket graph holding it (`load(file)` gives the
    model of a graph file; `model` is the largest's).

    Inputs of a bucket's exact shapes (a processor that fits buckets pads to them) run as they are; larger ones
    are cut to the bucket and each output is padded back with zeros to the shape the graph of the inputs' shapes
    gives, so the caller sees the shapes it sent. Bucket models load on first use; `runs` counts the calls each
    bucket length served. Every other attribute is the full model's.
    """

    def __init__(self, model: Any, buckets: Buckets, load: Callable[[str], Any]) -> None:
        self.model = model
        self.buckets = buckets
        self.lengths = [buckets.lengths[g] for g in buckets.order]
        self.runs: Counter[int] = Counter()
        self._load = load
        self._loading = threading.Lock()
        self._models: dict[str, Any] = {buckets.largest: model}

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "buckets", "runs", "_models", "_loading"):
            raise AttributeError(name)
        return getattr(self.model, name)

    @property
    def sessions_loaded(self) -> int:
        """How many bucket graphs have an onnxruntime session so far."""
        return len(self._models)

    def _graph_model(self, graph: str) -> Any:
        if graph not in self._models:
            with self._loading:  # threads sharing the pipeline load each bucket once
                if graph not in self._models:
                    self._models[graph] = self._load(graph)
        return self._models[graph]

    def __call__(self, **inputs: Any) -> Any:
        graph = self.buckets.holding(inputs)
        self.runs[self.buckets.lengths[graph]] += 1
        origin = self.buckets.matching(inputs)
        if origin == graph:
            return self._graph_model(graph)(**inputs)
        outputs = self._graph_model(graph)(**self.buckets.cut(inputs, graph))
        wanted = self.buckets.outputs[origin or self.buckets.largest]
        return type(outputs)(
            **{name: _padded_to(value, wanted.get(name)) for name, value in outputs.items() if value is not None}
        )

    forward = __call__


def serve_buckets(
    model: Any, model_file: Path, buckets: Mapping[str, Mapping[str, int]], modality: Any, load: Callable[[str], Any]
) -> Any:
    """The model itself, or a BucketedModel over it when `buckets` (the graphs of one batch size, `model_file` the
    longest) hold several sizes of the length dim."""
    by_file = {file: dims[modality.length_dim] for file, dims in buckets.items() if modality.length_dim in dims}
    if len(set(by_file.values())) < 2:
        return model
    signatures = {file: io_signature(load_graph(model_file.parent / file)) for file in by_file}
    return BucketedModel(model, Buckets(by_file, signatures, modality.mask_input), load)


def _shapes(values: list[dict[str, Any]]) -> Shapes:
    return {v["name"]: list(v["shape"]) for v in values}


def _contiguous(value: Any) -> Any:
    return value.contiguous() if hasattr(value, "contiguous") else np.ascontiguousarray(value)


def _padded_to(value: Any, shape: list[int] | None) -> Any:
    """A torch output padded with zeros at the end of each dim to `shape` (as it is when no shape is known)."""
    import torch

    if shape is None or list(value.shape) == shape:
        return value
    padding = [p for axis in reversed(range(value.dim())) for p in (0, shape[axis] - value.shape[axis])]
    return torch.nn.functional.pad(value, padding)
