"""A third-party modelexport plugin: time-series forecasting (PatchTST), built on modelexport's public API only."""

from modelexport_timeseries.modality import TimeSeriesModality
from modelexport_timeseries.processor import ONNXSeriesProcessor, SeriesProcessor

__all__ = ["ONNXSeriesProcessor", "SeriesProcessor", "TimeSeriesModality"]
