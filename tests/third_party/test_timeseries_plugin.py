"""A third-party plugin proves the extension surface: `modelexport-timeseries` (tests/third_party/) adds a modality
and a task transformers lacks, end to end, through modelexport's documented API alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modelexport_core import ONNXAutoProcessor, create_pipeline, detect_shapes

from conftest import cli_env, run_modelexport

timeseries = pytest.importorskip("modelexport_timeseries", reason="make setup installs tests/third_party/*")
TASK = "time-series-forecasting"
CONTEXT, CHANNELS, HORIZON = 32, 2, 6


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PatchTSTForPrediction (one layer, d_model 16) saved locally."""
    from transformers import PatchTSTConfig, PatchTSTForPrediction

    config = PatchTSTConfig(
        num_input_channels=CHANNELS,
        context_length=CONTEXT,
        patch_length=8,
        patch_stride=8,
        prediction_length=HORIZON,
        d_model=16,
        num_attention_heads=2,
        num_hidden_layers=1,
        ffn_dim=32,
    )
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("timeseries") / "patchtst"
    PatchTSTForPrediction(config).eval().save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def package(source: Path) -> Path:
    """`modelexport export patchtst OUT --task time-series-forecasting --batch-size 2` (validated)."""
    out_dir = source.parent / "package"
    run = run_modelexport("export", source, out_dir, "--task", TASK, "--batch-size", 2)
    assert run.returncode == 0, run.stderr
    return out_dir


def test_the_cli_exports_a_validated_fixed_shape_package(package: Path) -> None:
    metadata = json.loads((package / "export_metadata.json").read_text())
    assert (metadata["modality"], metadata["task"]) == ("timeseries", TASK)
    assert metadata["shapes"] == {"past_values": [2, CONTEXT, CHANNELS]} and metadata["validation"]["ok"]
    assert run_modelexport("validate", package).returncode == 0


def test_shape_detection_and_wrapping_come_from_the_plugin(package: Path) -> None:
    detected = detect_shapes(package)
    assert detected.modality == "timeseries"
    assert detected.shapes == {"batch_size": 2, "context_length": CONTEXT, "num_input_channels": CHANNELS}
    processor = ONNXAutoProcessor.from_model(package)
    assert isinstance(processor, timeseries.ONNXSeriesProcessor)
    assert processor([[1.0, 2.0]] * 5)["past_values"].shape == (1, CONTEXT, CHANNELS)  # left-padded


def test_create_pipeline_forecasts_as_the_pytorch_model_does(package: Path, source: Path) -> None:
    from transformers import PatchTSTForPrediction

    rng = np.random.default_rng(0)
    series = [rng.standard_normal((length, CHANNELS)).astype(np.float32) for length in (CONTEXT, 50, 40)]
    forecaster = create_pipeline(TASK, package)
    assert type(forecaster).__name__ == "TimeSeriesForecastingPipeline"
    answers = forecaster(series, batch_size=3)  # more series than the fixed batch of 2
    model = PatchTSTForPrediction.from_pretrained(source).eval()
    for answer, values in zip(answers, series, strict=True):
        with torch.no_grad():
            expected = model(past_values=torch.from_numpy(values[-CONTEXT:][None])).prediction_outputs[0]
        assert np.asarray(answer["forecast"]).shape == (HORIZON, CHANNELS)
        assert np.abs(np.asarray(answer["forecast"]) - expected.numpy()).max() < 1e-5


def test_plugins_list_shows_the_third_party_plugin() -> None:
    run = run_modelexport("plugins", "list", "--json", env=cli_env())
    rows = {row["plugin"]: row for row in json.loads(run.stdout)}
    row = rows["timeseries"]
    assert (row["distribution"], row["modality"], row["tasks"]) == ("modelexport-timeseries", ["timeseries"], [TASK])
    assert row["hooks"] == ["ort_model_class", "register_modalities", "route_processor"]
