"""The fixed-batch model adapter: any batch size in, the model's fixed batch underneath, only real rows out."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelexport_core.package.axes import BatchAxes

if TYPE_CHECKING:
    import torch


class FixedBatchModel:
    """Wraps an ORTModel whose inputs have a fixed batch: splits a call into chunks of that batch, pads the
    last chunk by repeating its last row, runs, and drops the padded rows. Every other attribute is the
    wrapped model's, so transformers pipelines use it as they would the ORTModel.

    A model with several independent batch axes (`batch_axes`, e.g. CLIP's images and texts) is chunked along
    each of them on its own: every combination of chunks runs once, and each output is joined back along its
    own batch axes (`logits_per_image` [images, texts] from blocks of [image batch, text batch]).
    """

    def __init__(self, model: Any, batch_size: int, batch_axes: BatchAxes | None = None) -> None:
        self.model = model
        self.batch_size = batch_size
        self.batch_axes = batch_axes or BatchAxes.single(batch_size)

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "batch_axes"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def __call__(self, **inputs: Any) -> Any:
        import torch

        tensors = {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        counts = self.batch_axes.counts(tensors)
        sizes = self.batch_axes.sizes
        if all(counts[group] == sizes[group] for group in counts):
            return self.model(**inputs)
        results = {index: self.model(**{**inputs, **block}) for index, block in self.batch_axes.blocks(tensors, counts)}
        return _joined(results, self.batch_axes.chunks(counts), counts, sizes, self.batch_axes)

    forward = __call__


def _joined(
    results: dict[tuple[int, ...], Any],
    chunks: dict[str, int],
    counts: dict[str, int],
    sizes: dict[str, int],
    batch_axes: BatchAxes,
) -> Any:
    """Each output joined from its chunk blocks along its own batch axes, keeping only the real rows."""
    import torch

    groups = list(chunks)
    first = next(iter(results.values()))

    def block(name: str, index: dict[str, int], axes: dict[int, str]) -> torch.Tensor:
        value = _as_tensor(results[tuple(index.get(group, 0) for group in groups)][name])
        for axis, group in axes.items():
            real = min(sizes[group], counts[group] - index[group] * sizes[group])
            value = value.narrow(axis, 0, real)
        return value

    def assembled(name: str, axes: dict[int, str], index: dict[str, int], pending: list[int]) -> torch.Tensor:
        if not pending:
            return block(name, index, axes)
        axis, rest = pending[0], pending[1:]
        group = axes[axis]
        return torch.cat([assembled(name, axes, {**index, group: i}, rest) for i in range(chunks[group])], dim=axis)

    joined = {}
    for name, value in first.items():
        if value is None:
            continue
        axes = {axis: group for axis, group in batch_axes.output_axes(name).items() if group in chunks}
        joined[name] = assembled(name, axes, {}, sorted(axes))
    return type(first)(**joined)


def _as_tensor(value: Any) -> torch.Tensor:
    import torch

    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)


class BatchBucketedModel:
    """Over a package with batch-size buckets: the rows of a call in full chunks of the largest batch, the rest on
    the smallest fixed batch that holds it (one text no longer pays for eight rows). `smaller` maps each other
    batch size to a function building its FixedBatchModel, called on first use; `runs` counts the batches each
    size ran. Every other attribute is the largest batch's model's."""

    def __init__(self, largest: FixedBatchModel, smaller: dict[int, Callable[[], FixedBatchModel]]) -> None:
        self.largest = largest
        self.batch_sizes = sorted([*smaller, largest.batch_size])
        self._build = smaller
        self._models: dict[int, FixedBatchModel] = {largest.batch_size: largest}
        self._loading = threading.Lock()
        self.runs: Counter[int] = Counter()

    def __getattr__(self, name: str) -> Any:
        if name in ("largest", "_models", "_build", "_loading", "runs"):
            raise AttributeError(name)
        return getattr(self.largest, name)

    def _model(self, batch: int) -> FixedBatchModel:
        if batch not in self._models:
            with self._loading:  # threads sharing the pipeline build each batch's model once
                if batch not in self._models:
                    self._models[batch] = self._build[batch]()
        return self._models[batch]

    def __call__(self, **inputs: Any) -> Any:
        import torch

        rows = next(v.shape[0] for v in inputs.values() if isinstance(v, torch.Tensor))
        full = rows - rows % self.largest.batch_size
        parts = [(0, full, self.largest)] if full else []
        if full:
            self.runs[self.largest.batch_size] += full // self.largest.batch_size
        if full < rows:
            batch = next(size for size in self.batch_sizes if size >= rows - full)
            parts.append((full, rows, self._model(batch)))
            self.runs[batch] += 1
        results = [model(**_rows(inputs, start, end)) for start, end, model in parts]
        if len(results) == 1:
            return results[0]
        return type(results[0])(
            **{name: torch.cat([r[name] for r in results]) for name, v in results[0].items() if v is not None}
        )

    forward = __call__


def _rows(inputs: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    import torch

    return {k: v[start:end] if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
