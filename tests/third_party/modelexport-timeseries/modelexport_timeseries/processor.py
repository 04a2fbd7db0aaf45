"""`SeriesProcessor`: lists or arrays of observations to the `past_values` a forecaster takes, and its fixed-shape
wrapper."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from modelexport_core import FixedShapeProcessor, ModelExportError


class SeriesProcessor:
    """Each series (observations x channels, or observations for one channel) to its last `context_length`
    observations; shorter series are left-padded with their first observation."""

    def __init__(self, context_length: int, num_input_channels: int) -> None:
        self.context_length, self.num_input_channels = context_length, num_input_channels

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> SeriesProcessor:
        """The processor of the model saved in `directory` (its config.json)."""
        try:
            config = json.loads((Path(directory) / "config.json").read_text())
        except (OSError, ValueError) as err:
            raise ModelExportError(f"No config.json in {directory}: pass the model's directory") from err
        return cls(config["context_length"], config["num_input_channels"])

    def __call__(self, series: Any, return_tensors: str | None = None) -> dict[str, Any]:
        values = np.stack([self._fitted(np.asarray(row, dtype=np.float32)) for row in self._rows(series)])
        if return_tensors == "pt":
            import torch

            return {"past_values": torch.from_numpy(values)}
        return {"past_values": values}

    def _rows(self, series: Any) -> list[Any]:
        """The series of a call: a list of series (each observations x channels, or 1-D for one channel) or one."""
        dims = 2 if self.num_input_channels > 1 else 1
        return series if isinstance(series, list) and series and np.ndim(series[0]) == dims else [series]

    def _fitted(self, row: np.ndarray) -> np.ndarray:
        row = row.reshape(len(row), -1)
        if row.shape[1] != self.num_input_channels or len(row) == 0:
            raise ModelExportError(
                f"A series of shape {tuple(row.shape)} was given: the model takes observations x "
                f"{self.num_input_channels} channels"
            )
        row = row[-self.context_length :]
        return np.concatenate([np.repeat(row[:1], self.context_length - len(row), axis=0), row])


class ONNXSeriesProcessor(FixedShapeProcessor):
    """A SeriesProcessor fixed to a package's context length and channels."""

    def __init__(self, processor: SeriesProcessor, dims: dict[str, int]) -> None:
        if (dims["context_length"], dims["num_input_channels"]) != (
            processor.context_length,
            processor.num_input_channels,
        ):
            processor = SeriesProcessor(dims["context_length"], dims["num_input_channels"])
        super().__init__(processor, dims)

    def __call__(self, series: Any, return_tensors: str | None = None) -> dict[str, Any]:
        return self.wrapped(series, return_tensors=return_tensors)
