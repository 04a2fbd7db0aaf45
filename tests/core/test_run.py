"""`modelexport run` on the local engine: every row once, in order, with create_pipeline's answers; bad rows get
an error and never stop the run; an interrupted run resumes; what a user gets wrong fails before any work."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pyarrow.parquet
import pytest

from modelexport_core import create_pipeline, export
from modelexport_core.plugins.manager import get_modality

from conftest import assert_user_error, cli_env, run_modelexport

TASK = "text-classification"


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return get_modality("text").corpus()


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _output(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pyarrow.parquet.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_corpus_gets_create_pipelines_answers(text_package, corpus, tmp_path: Path) -> None:
    package = text_package(TASK, 2)
    source = _jsonl(tmp_path / "corpus.jsonl", [{"text": text} for text in corpus])
    run = run_modelexport("run", package, source, tmp_path / "out.parquet", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["rows"] == len(corpus)
    rows = _output(tmp_path / "out.parquet")
    expected = create_pipeline(TASK, package)(corpus, batch_size=2)
    assert [row["id"] for row in rows] == list(range(len(corpus)))
    assert [row["text"] for row in rows] == corpus
    assert [row["label"] for row in rows] == [answer["label"] for answer in expected]
    assert np.allclose([row["score"] for row in rows], [answer["score"] for answer in expected], atol=1e-6)
    assert all(row["error"] is None for row in rows)
    assert not list(tmp_path.glob(".out.parquet*"))  # the shards are gone


def test_bad_rows_get_an_error_and_every_row_comes_out_once(text_package, corpus, tmp_path: Path) -> None:
    rows = [{"doc": f"d{i}", "text": corpus[i % len(corpus)]} for i in range(10_000)]
    for i in range(0, 10_000, 100):  # 1%: empty, blank or missing texts
        rows[i] = {"doc": f"d{i}", "text": ["", "   ", None][i // 100 % 3]}
    source = _jsonl(tmp_path / "in.jsonl", rows)
    args = ("--id-column", "doc", "--drop-input", "--shard-rows", "2000")
    run = run_modelexport("run", text_package(TASK, 2), source, tmp_path / "out.jsonl", *args)
    assert run.returncode == 0, run.stderr
    written = _output(tmp_path / "out.jsonl")
    assert [row["doc"] for row in written] == [row["doc"] for row in rows]
    errors = {row["doc"]: row["error"] for row in written if row["error"]}
    assert sorted(errors) == sorted(f"d{i}" for i in range(0, 10_000, 100))
    assert set(errors.values()) == {"empty text", "no text"}
    assert all("text" not in row and (row.get("label") is not None) == (row["error"] is None) for row in written)


def test_a_killed_run_resumes_to_the_same_output(text_package, corpus, tmp_path: Path) -> None:
    package = text_package(TASK, 2)
    source = _jsonl(tmp_path / "in.jsonl", [{"text": text} for text in corpus * 10])
    whole = run_modelexport("run", package, source, tmp_path / "whole.jsonl", "--shard-rows", "100")
    assert whole.returncode == 0, whole.stderr
    output = tmp_path / "resumed.jsonl"
    command = [str(Path(sys.executable).with_name("modelexport")), "run", str(package), str(source), str(output)]
    killed = subprocess.Popen([*command, "--shard-rows", "100"], env=cli_env(), stderr=subprocess.DEVNULL)
    shards = tmp_path / ".resumed.jsonl.shards"
    while len(list(shards.glob("shard-*.parquet"))) < 5 and killed.poll() is None:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    finished = len(list(shards.glob("shard-*.parquet")))
    assert 5 <= finished < 32 and not output.exists()
    refused = run_modelexport("run", package, source, output)
    assert_user_error(refused, "An interrupted run left", "pass --resume to finish it or --force to start over")
    resumed = run_modelexport("run", package, source, output, "--shard-rows", "100", "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed"] == 100 * finished
    assert _output(output) == _output(tmp_path / "whole.jsonl")


def test_ctrl_c_says_how_to_finish_the_run(text_package, corpus, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", [{"text": text} for text in corpus * 10])
    command = [str(Path(sys.executable).with_name("modelexport")), "run", str(text_package(TASK, 2)), str(source)]
    running = subprocess.Popen(
        [*command, str(tmp_path / "out.jsonl"), "--shard-rows", "100"], env=cli_env(), stderr=subprocess.PIPE, text=True
    )
    shards = tmp_path / ".out.jsonl.shards"
    while len(list(shards.glob("shard-*.parquet"))) < 2 and running.poll() is None:
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)
    errors = [line for line in running.communicate()[1].splitlines() if not line.startswith("> ")]
    assert running.returncode == 2 and len(errors) == 1, errors
    assert re.fullmatch(
        r"Error: interrupted: \d+ of 3200 rows are in .*\.out\.jsonl\.shards: run again with --resume to finish",
        errors[0],
    )


def test_pipeline_args_reach_every_call(text_package, corpus, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", [{"text": text} for text in corpus[:5]])
    run = run_modelexport("run", text_package(TASK, 2), source, tmp_path / "out.jsonl", "--pipeline-arg", "top_k=2")
    assert run.returncode == 0, run.stderr
    assert all(len(row["label"]) == 2 and len(row["score"]) == 2 for row in _output(tmp_path / "out.jsonl"))


def _wav(path: Path, samples: int) -> np.ndarray:
    """A 16-bit mono WAV of `samples` random samples at `path`; the waveform it holds."""
    pcm = (np.random.RandomState(samples).randn(samples) * 3000).astype(np.int16)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(16000)
        audio.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768


def test_audio_paths_are_read_and_unreadable_ones_are_errors(tmp_path: Path) -> None:
    from tiny_audio_models import write_tiny_audio_classifier

    package = tmp_path / "package"
    export(write_tiny_audio_classifier(tmp_path / "model"), package, batch_size=2, validate=False)
    clips = {tmp_path / f"{n}.wav": _wav(tmp_path / f"{n}.wav", n) for n in (4000, 9000)}
    (tmp_path / "broken.wav").write_bytes(b"not a wav file")
    first, last = map(str, clips)
    paths = [first, str(tmp_path / "missing.wav"), str(tmp_path / "broken.wav"), last]
    source = _jsonl(tmp_path / "in.jsonl", [{"audio": path} for path in paths])
    run = run_modelexport("run", package, source, tmp_path / "out.parquet")
    assert run.returncode == 0, run.stderr
    rows = _output(tmp_path / "out.parquet")
    assert [row["error"] is None for row in rows] == [True, False, False, True]
    assert rows[1]["error"].startswith("Audio file not found") and rows[2]["error"].startswith("Cannot read")
    waveforms = [{"raw": waveform, "sampling_rate": 16000} for waveform in clips.values()]
    expected = create_pipeline("audio-classification", package)(waveforms)
    assert [rows[0]["label"], rows[3]["label"]] == [[a["label"] for a in answers] for answers in expected]


def test_what_a_user_gets_wrong_fails_before_any_work(text_package, tmp_path: Path) -> None:
    package = text_package(TASK, 2)
    source = _jsonl(tmp_path / "in.jsonl", [{"text": "paris"}])
    (tmp_path / "done.jsonl").write_text("{}\n")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    cases = [
        ((source, tmp_path / "o.jsonl", "--column", "body"), "has no column 'body'; its columns: text"),
        ((tmp_path / "missing.jsonl", tmp_path / "o.jsonl"), "Input file not found"),
        ((tmp_path / "broken.parquet", tmp_path / "o.jsonl"), "Cannot read"),
        ((source, tmp_path / "done.jsonl"), "exists: pass --force to replace it"),
        ((source, tmp_path / "o.txt"), "must end with .jsonl, .parquet"),
        ((source, tmp_path / "o.jsonl", "--engine", "spark"), "--engine takes local or ray"),
        ((source, tmp_path / "o.jsonl", "--pipeline-arg", "top_k"), "--pipeline-arg takes KEY=VALUE"),
        ((source, tmp_path / "o.jsonl", "--task", "translate"), "No ORTModel class for task 'translate'"),
    ]
    for args, message in cases:
        assert_user_error(run_modelexport("run", package, *args), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.parquet", "done.jsonl", "in.jsonl"]


def test_the_ray_engine_without_ray_names_the_extra(text_package, tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", [{"text": "paris"}])
    blocked = "import sys; sys.modules['ray'] = None; from modelexport_core.cli import main; sys.exit(main())"
    args = ["run", str(text_package(TASK, 2)), str(source), str(tmp_path / "o.jsonl"), "--engine", "ray"]
    done = subprocess.run(
        [sys.executable, "-c", blocked, *args],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: --engine ray needs Ray Data: pip install 'modelexport-core[ray]'"
    )
