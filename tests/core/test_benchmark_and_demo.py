"""`modelexport benchmark` on a text package, and the MiniLM demo that `make demo` runs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from modelexport_core.bench.benchmark import RUNNERS

from conftest import run_modelexport


def test_benchmark_json_times_every_runner_side_by_side(text_package: Callable, text_model: Callable) -> None:
    package = text_package("feature-extraction", 4)
    run = run_modelexport(
        "benchmark",
        package,
        "--source",
        text_model("feature-extraction"),
        "--json",
        "--count",
        "6",
        "--warmup",
        "0",
        "--repeats",
        "1",
    )
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert [row["inputs"] for row in rows] == ["short", "full"]
    for row in rows:
        assert (row["count"], row["batch_size"]) == (6, 4)
        assert set(row["seconds"]) == set(RUNNERS) and all(s > 0 for s in row["seconds"].values())
        assert row["ratio_to_pytorch"]["pytorch"] == row["ratio_to_onnxruntime"]["onnxruntime"] == 1.0
        expected = row["seconds"]["modelexport"] / row["seconds"]["onnxruntime"]
        assert row["ratio_to_onnxruntime"]["modelexport"] == pytest.approx(expected, abs=1e-3)


def test_benchmark_table_names_every_runner(text_package: Callable, text_model: Callable) -> None:
    run = run_modelexport(
        "benchmark",
        text_package("text-classification", 1),
        "--source",
        text_model("text-classification"),
        "--count",
        "2",
        "--warmup",
        "0",
        "--repeats",
        "1",
    )
    assert run.returncode == 0, run.stderr
    for label in ("(a) PyTorch pipeline", "(b) Optimum, dynamic axes", "(c) create_pipeline", "(d) raw onnxruntime"):
        assert label in run.stdout


def test_benchmark_without_a_source_model_is_a_one_line_error(text_package: Callable, tmp_path: Path) -> None:
    run = run_modelexport("benchmark", text_package("text-classification", 1), "--source", tmp_path)
    assert run.returncode == 2
    assert run.user_error_lines() == [
        f"Error: --source must be the original model directory (no config.json in {tmp_path})"
    ]
    assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_demo_minilm_similarities_match_pytorch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import demo

    lengths = [16, 32, 64, 128]  # fewer buckets than the demo's, to export faster
    assert demo.main(str(tmp_path / "minilm"), speed=False, lengths=lengths) == 0  # non-zero below cosine 0.9999
    shown = capsys.readouterr().out
    assert re.search(r"330 sentences \(the pairs and the corpus\): worst cosine (0\.9999\d+|1\.000000)", shown)
    assert json.loads((tmp_path / "minilm" / "sentence_embedding.json").read_text()) == {
        "pooling": "mean",
        "normalize": True,
    }
    for first, _second in demo.PAIRS:
        assert first[:12] in shown
    metadata = json.loads((tmp_path / "minilm" / "export_metadata.json").read_text())
    assert metadata["source_model"] == "model" and metadata["shapes"]["input_ids"] == [8, 128]
    assert sorted(shapes["input_ids"][1] for shapes in metadata["buckets"].values()) == lengths


def test_runners_take_turns_in_every_timed_round() -> None:
    """A slow spell of a shared machine falls on every runner alike, not on whichever ran then."""
    from modelexport_core.bench.runners import interleaved_medians

    calls: list[str] = []
    medians = interleaved_medians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 1, 2)
    assert calls == ["a", "b"] * 3 and set(medians) == {"a", "b"} and all(m >= 0 for m in medians.values())
