"""The fixed-batch model adapter: any batch size in, the model's fixed batch underneath, only real rows out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class FixedBatchModel:
    """Wraps an ORTModel whose inputs have a fixed batch: splits a call into chunks of that batch, pads the
    last chunk by repeating its last row, runs, and drops the padded rows. Every other attribute is the
    wrapped model's, so transformers pipelines use it as they would the ORTModel.
    """

    def __init__(self, model: Any, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size

    def __getattr__(self, name: str) -> Any:
        if name == "model":
            raise AttributeError(name)
        return getattr(self.model, name)

    def __call__(self, **inputs: Any) -> Any:
        import torch

        tensors = {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        rows = {v.shape[0] for v in tensors.values()}
        if len(rows) != 1:
            raise ValueError(f"inputs disagree on the batch size: {sorted(rows)}")
        total = rows.pop()
        if total == self.batch_size:
            return self.model(**inputs)
        outputs = []
        for start in range(0, total, self.batch_size):
            real = min(self.batch_size, total - start)
            chunk = {k: _padded(v[start : start + real], self.batch_size) if k in tensors else v for k, v in inputs.items()}
            outputs.append((self.model(**chunk), real))
        return _concatenate(outputs)

    forward = __call__


def _padded(rows: torch.Tensor, batch_size: int) -> torch.Tensor:
    import torch

    missing = batch_size - rows.shape[0]
    if missing <= 0:
        return rows
    return torch.cat([rows, rows[-1:].expand(missing, *rows.shape[1:])])


def _concatenate(outputs: list[tuple[Any, int]]) -> Any:
    """Join chunk outputs along the batch axis, keeping only each chunk's real rows."""
    import torch

    first = outputs[0][0]
    joined = {
        key: torch.cat([_as_tensor(output[key])[:real] for output, real in outputs])
        for key, value in first.items()
        if value is not None
    }
    return type(first)(**joined)


def _as_tensor(value: Any) -> torch.Tensor:
    import torch

    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
