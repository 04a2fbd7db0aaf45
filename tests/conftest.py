"""Shared fixtures: tiny artifacts built locally, so no test needs the Hub."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelexport_core.cli import app

from tiny_models import write_spread_text_model, write_tiny_text_model, write_tiny_tokenizer
from tiny_vision_models import write_tiny_vit


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a saved tiny BertTokenizerFast (see `write_tiny_tokenizer`)."""
    return write_tiny_tokenizer(tmp_path_factory.mktemp("tiny_tokenizer"))


# ---- Core foundation (issue 2): tiny models saved locally, the `modelexport` CLI, one export a session ----

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_BERT_NAME = "tiny-bert"
TINY_BERT_SHAPE_OPTIONS = ("--batch-size", "2", "--sequence-length", "16")


def write_tiny_bert(directory: Path) -> Path:
    """Save a tiny BertForSequenceClassification (2 layers, hidden 32) with a tiny WordPiece tokenizer."""
    return write_tiny_text_model(directory, "text-classification")


def cli_env(**overrides: str | None) -> dict[str, str]:
    """The environment of a `modelexport` subprocess: offline, every installed plugin unless overridden."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.pop("MODELEXPORT_LOAD_PLUGINS", None)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass(frozen=True)
class CliRun:
    """One `modelexport` subprocess: its arguments, exit code, output and wall time."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def user_error_lines(self) -> list[str]:
        """The stderr lines that are not progress messages ("> Loading ...")."""
        return [line for line in self.stderr.splitlines() if line.strip() and not line.startswith("> ")]


def run_modelexport(*args: object, env: dict[str, str] | None = None, executable: str | None = None):
    """Run the installed `modelexport` script (of this interpreter's environment unless `executable`)."""
    script = executable or str(Path(sys.executable).with_name("modelexport"))
    command = (script, *(str(a) for a in args))
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env or cli_env(), timeout=900)
    return CliRun(command, done.returncode, done.stdout, done.stderr, round(time.perf_counter() - start, 2))


@dataclass(frozen=True)
class CliExport:
    """A package written by `modelexport export` and the run that wrote it."""

    out_dir: Path
    run: CliRun


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny BERT sequence classifier with its tokenizer, in a directory named `tiny-bert`."""
    return write_tiny_bert(tmp_path_factory.mktemp("models") / TINY_BERT_NAME)


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny ViT image classifier."""
    return write_tiny_vit(tmp_path_factory.mktemp("models") / "tiny-vit")


@pytest.fixture(scope="session")
def tiny_bert_export(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> CliExport:
    """`modelexport export tiny-bert OUT --task text-classification --batch-size 2 --sequence-length 16`."""
    out_dir = tmp_path_factory.mktemp("exports") / "tiny-bert-onnx"
    options = ("--task", "text-classification", *TINY_BERT_SHAPE_OPTIONS)
    run = run_modelexport("export", tiny_bert_dir, out_dir, *options)
    return CliExport(out_dir, run)


@pytest.fixture(scope="session")
def tiny_bert_forced_export(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> CliExport:
    """The same export without --task, with --force, into an OUT_DIR that already holds a stale file."""
    out_dir = tmp_path_factory.mktemp("exports") / "forced"
    out_dir.mkdir()
    (out_dir / "stale.txt").write_text("from an earlier export")
    run = run_modelexport("export", tiny_bert_dir, out_dir, "--force", *TINY_BERT_SHAPE_OPTIONS)
    return CliExport(out_dir, run)


# ---- Tiny models of the six text tasks and their packages, built once per session ----
# (test_text_pipelines.py, test_shapes.py)

TEXT_SEQUENCE_LENGTH = 16
OPTIMUM_STATIC_BATCH = 2


@pytest.fixture(scope="session")
def text_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: task -> the directory of its tiny spread-weight model with tokenizer, built once per session."""
    built: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in built:
            built[task] = write_spread_text_model(tmp_path_factory.mktemp("text-models") / task, task)
        return built[task]

    return get


@pytest.fixture(scope="session")
def text_package(
    text_model: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, int], Path]:
    """Factory: (task, batch_size) -> that model's modelexport package (batch_size x 16 tokens), exported once."""
    from modelexport_core import export

    exported: dict[tuple[str, int], Path] = {}

    def get(task: str, batch_size: int) -> Path:
        if (task, batch_size) not in exported:
            out_dir = tmp_path_factory.mktemp("text-packages") / f"{task}-b{batch_size}"
            export(
                text_model(task),
                out_dir,
                task=task,
                batch_size=batch_size,
                sequence_length=TEXT_SEQUENCE_LENGTH,
                validate=False,
            )
            exported[task, batch_size] = out_dir
        return exported[task, batch_size]

    return get


@pytest.fixture(scope="session")
def optimum_package(
    text_model: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, bool], Path]:
    """Factory: (task, static) -> Optimum's own export of the model (`main_export`), exported once.

    static: `no_dynamic_axes=True` at batch 2 x 16 tokens; else Optimum's default dynamic axes.
    """
    import contextlib
    import io
    import warnings

    from optimum.exporters.onnx import main_export

    exported: dict[tuple[str, bool], Path] = {}

    def get(task: str, static: bool) -> Path:
        if (task, static) not in exported:
            out_dir = tmp_path_factory.mktemp("optimum-packages") / f"{task}-{'static' if static else 'dynamic'}"
            shapes = (
                dict(no_dynamic_axes=True, batch_size=OPTIMUM_STATIC_BATCH, sequence_length=TEXT_SEQUENCE_LENGTH)
                if static
                else {}
            )
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                main_export(str(text_model(task)), out_dir, task=task, do_validation=False, **shapes)
            exported[task, static] = out_dir
        return exported[task, static]

    return get


def assert_user_error(run: CliRun, *fragments: str) -> str:
    """Exit 2, exactly one non-progress line on stderr, `Error: ...`, holding every fragment; return it."""
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    lines = run.user_error_lines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def invoke(*args: object) -> CliRun:
    """Run the CLI in this process (the plugin manager, with any fixture-registered plugin, is this one)."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    return CliRun(tuple(str(a) for a in args), result.exit_code, result.stdout, result.stderr, 0.0)
