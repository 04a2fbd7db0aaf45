"""The timeseries plugin's hooks: its modality, the ORTModel that loads its packages, and its processor's route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelexport_core import Modality, hookimpl
from modelexport_timeseries.modality import TimeSeriesModality
from modelexport_timeseries.pipeline import TASK
from modelexport_timeseries.processor import SeriesProcessor


@hookimpl
def register_modalities(register: Callable[[Modality], None]) -> None:
    register(TimeSeriesModality())


@hookimpl
def ort_model_class(task: str) -> type | None:
    """Optimum has no ORTModel for forecasting; its generic one runs the graph and names the outputs."""
    if task != TASK:
        return None
    from optimum.onnxruntime import ORTModelForCustomTasks

    return ORTModelForCustomTasks


@hookimpl
def route_processor(pipeline_class: type, processor: Any) -> dict[str, Any] | None:
    """A series processor goes where transformers' batching looks for one: the pipeline's `feature_extractor`."""
    ours = isinstance(getattr(processor, "wrapped", processor), SeriesProcessor)
    return {"feature_extractor": processor} if ours else None
