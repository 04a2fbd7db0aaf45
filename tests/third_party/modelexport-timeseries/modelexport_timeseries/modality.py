"""`TimeSeriesModality`: `past_values` [batch, context_length, num_input_channels] of a PatchTST-like forecaster."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelexport_core import Modality
from modelexport_timeseries.pipeline import TASK, TimeSeriesForecastingPipeline, register_task
from modelexport_timeseries.processor import ONNXSeriesProcessor, SeriesProcessor


class TimeSeriesModality(Modality):
    """Series of observations: the context length is the model's own (PatchTST cuts it into patches)."""

    name = "timeseries"
    tasks = (TASK,)
    input_names = ("past_values",)

    def name_dims(self, input_shapes: Mapping[str, Sequence[int | None]]) -> dict[str, int | None]:
        batch_size, context_length, channels = [*input_shapes.get("past_values", ()), None, None, None][:3]
        return {"batch_size": batch_size, "context_length": context_length, "num_input_channels": channels}

    def default_dims(self, package_dir: Path) -> dict[str, int]:
        config = json.loads((Path(package_dir) / "config.json").read_text())
        return {"context_length": config["context_length"], "num_input_channels": config["num_input_channels"]}

    def load_processor(self, directory: str, trust_remote_code: bool = False) -> Any:
        return SeriesProcessor.from_pretrained(directory)

    def wrap_processor(self, processor: Any, dims: Mapping[str, int]) -> Any | None:
        return ONNXSeriesProcessor(processor, dict(dims)) if isinstance(processor, SeriesProcessor) else None

    def pipeline_class(self, task: str) -> type | None:
        if task != TASK:
            return None
        register_task()
        return TimeSeriesForecastingPipeline
