"""`TimeSeriesForecastingPipeline`: transformers has no forecasting pipeline, so the plugin brings one."""

from __future__ import annotations

from typing import Any

from transformers import Pipeline

TASK = "time-series-forecasting"


class TimeSeriesForecastingPipeline(Pipeline):
    """Series in, `{"forecast": [[value per channel] per future step]}` out, one answer per series.

    The series processor comes as the pipeline's `feature_extractor` (what transformers batches with).
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def _sanitize_parameters(self, **kwargs: Any) -> tuple[dict, dict, dict]:
        return {}, {}, {}

    def preprocess(self, series: Any) -> dict[str, Any]:
        return self.feature_extractor(series, return_tensors="pt")

    def _forward(self, inputs: dict[str, Any]) -> Any:
        return {"prediction_outputs": self.model(**inputs)["prediction_outputs"]}

    def postprocess(self, outputs: dict[str, Any]) -> dict[str, Any]:
        return {"forecast": outputs["prediction_outputs"][0].tolist()}


def register_task() -> None:
    """Make `time-series-forecasting` a task `transformers.pipeline` knows (idempotent)."""
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    if TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=TimeSeriesForecastingPipeline, pt_model=AutoModel)
