"""Audio shape buckets: one fixed graph per window, each batch of clips on the smallest window holding it, with
the PyTorch pipeline's answers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from transformers import pipeline

from modelexport_audio.samples import noise, silence, speech_like, tone
from modelexport_core import ModelExportError, create_pipeline, detect_shapes, export

from conftest import assert_user_error, run_modelexport
from tiny_audio_models import SAMPLING_RATE, write_tiny_audio_classifier, write_tiny_ctc

WINDOWS = [4000, 8000, 16000]
CLASSIFY, RECOGNIZE = "audio-classification", "automatic-speech-recognition"


def clips() -> list[np.ndarray]:
    """Clips from 0.075 s to the largest window, in no order of length."""
    return [
        speech_like(16000, SAMPLING_RATE, seed=1),
        tone(1200, SAMPLING_RATE, 440),
        speech_like(6000, SAMPLING_RATE, seed=2),
        noise(3900, seed=3),
        silence(9000),
        speech_like(2500, SAMPLING_RATE, seed=4),
        tone(12000, SAMPLING_RATE, 1500, amplitude=0.2),
    ]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audio-bucket-models")
    return {CLASSIFY: write_tiny_audio_classifier(root / "classifier"), RECOGNIZE: write_tiny_ctc(root / "ctc")}


@pytest.fixture(scope="module")
def cli_package(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`modelexport export classifier OUT --audio-sequence-length 4000,8000,16000 --batch-size 2` (validated)."""
    out_dir = tmp_path_factory.mktemp("audio-buckets") / "classifier"
    windows = ",".join(map(str, WINDOWS))
    run = run_modelexport("export", models[CLASSIFY], out_dir, "--audio-sequence-length", windows, "--batch-size", 2)
    assert run.returncode == 0, run.stderr
    return out_dir


def test_the_cli_writes_one_graph_per_window_sharing_one_weights_file(cli_package: Path) -> None:
    assert {p.name for p in cli_package.glob("model*")} == {
        "model.onnx",
        "model_seq4000.onnx",
        "model_seq8000.onnx",
        "model.onnx.data",
    }
    metadata = json.loads((cli_package / "export_metadata.json").read_text())
    assert metadata["validation"]["ok"] and metadata["shared_weights"]["shared_bytes"] > 0
    assert metadata["shapes"]["input_values"] == [2, 16000]
    windows = sorted(dims["audio_sequence_length"] for dims in detect_shapes(cli_package).buckets.values())
    assert windows == WINDOWS


def expected_runs(lengths: list[int], pipeline_batch: int, fixed_batch: int) -> Counter[int]:
    """Calls per window: clips sorted by length, batched by the pipeline, each fixed-batch chunk on the smallest
    window holding its longest clip."""
    ordered, runs = sorted(lengths), Counter()
    for start in range(0, len(ordered), pipeline_batch):
        batch = ordered[start : start + pipeline_batch]
        for chunk in range(0, len(batch), fixed_batch):
            runs[next(w for w in WINDOWS if w >= max(batch[chunk : chunk + fixed_batch]))] += 1
    return runs


def _same_answers(ours: list[list[dict]], theirs: list[list[dict]]) -> None:
    assert len(ours) == len(theirs)
    for mine, expected in zip(ours, theirs, strict=True):
        assert [r["label"] for r in mine] == [r["label"] for r in expected]
        assert [r["score"] for r in mine] == pytest.approx([r["score"] for r in expected], abs=1e-4)


@pytest.mark.parametrize("pipeline_batch", [1, 3])
def test_each_batch_runs_on_the_smallest_window_holding_it(cli_package: Path, models, pipeline_batch: int) -> None:
    ours = create_pipeline(CLASSIFY, cli_package)
    reference = pipeline(CLASSIFY, model=str(models[CLASSIFY]), framework="pt")
    _same_answers(ours(clips(), batch_size=pipeline_batch), reference(clips()))
    runs = ours.model.model.runs  # the fixed-batch adapter wraps the bucketed model
    assert runs == expected_runs([len(clip) for clip in clips()], pipeline_batch, fixed_batch=2)


def test_sorting_puts_short_clips_together(cli_package: Path) -> None:
    ours = create_pipeline(CLASSIFY, cli_package)
    unsorted = create_pipeline(CLASSIFY, cli_package, sort_by_length=False)
    assert ours(clips(), batch_size=2) == unsorted(clips(), batch_size=2)
    sorted_runs, unsorted_runs = ours.model.model.runs, unsorted.model.model.runs
    assert sorted_runs[4000] > unsorted_runs[4000] and sorted_runs[16000] < unsorted_runs[16000]


def test_speech_recognition_on_windows_gives_pytorchs_transcripts(models, tmp_path: Path) -> None:
    out_dir = tmp_path / "ctc"
    export(models[RECOGNIZE], out_dir, task=RECOGNIZE, audio_sequence_length=[4000, 8000], validate=False)
    ours = create_pipeline(RECOGNIZE, out_dir)
    reference = pipeline(RECOGNIZE, model=str(models[RECOGNIZE]), framework="pt")
    short = [clip for clip in clips() if len(clip) <= 8000]
    assert [a["text"] for a in ours(short, batch_size=2)] == [a["text"] for a in reference(short)]
    long_clip = speech_like(3 * 8000, SAMPLING_RATE, seed=9)
    chunking = {"chunk_length_s": 0.5, "stride_length_s": 0.08}
    assert ours(long_clip, **chunking)["text"] == reference(long_clip, **chunking)["text"]
    assert ours.model.model.runs[4000] > 0


def test_a_bad_window_list_is_a_one_line_error(models, tmp_path: Path) -> None:
    run = run_modelexport("export", models[CLASSIFY], tmp_path / "bad", "--audio-sequence-length", "4000,x")
    assert_user_error(run, "--audio-sequence-length takes a length or a comma-separated list of lengths")
    assert not (tmp_path / "bad").exists()


def test_only_the_batch_and_length_dims_take_several_sizes_and_unknown_dims_are_refused(
    models, tiny_vit_dir: Path, tmp_path: Path
) -> None:
    message = r"^height takes one size: only the batch size and no other dim of vision models take several"
    with pytest.raises(ModelExportError, match=message):
        export(tiny_vit_dir, tmp_path / "a", height=[16, 32])
    with pytest.raises(ModelExportError, match=r"^height does not apply to audio models: their dims are "):
        export(models[CLASSIFY], tmp_path / "b", height=224)
    assert list(tmp_path.iterdir()) == []
