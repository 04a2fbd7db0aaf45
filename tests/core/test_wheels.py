"""Separately installable, for real: the core and text wheels alone in a fresh virtual environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY_BERT_SHAPE_OPTIONS, cli_env, run_modelexport

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = REPO_ROOT / "constraints.txt"
PACKAGES = ("modelexport_core", "modelexport_text")
TORCH = "torch==2.13.0"


def _clean_env() -> dict[str, str]:
    """The environment of the fresh venv's processes: nothing pointing back at the development venv."""
    env = cli_env()
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV"):
        env.pop(key, None)
    return env


def _run(*command: object, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, cwd=cwd, env=_clean_env(), timeout=1200
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _installed(python: Path, cwd: Path) -> dict[str, str]:
    listed = json.loads(_run(python, "-m", "pip", "list", "--format", "json", cwd=cwd).stdout)
    return {row["name"].lower().replace("_", "-"): row["version"] for row in listed}


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build both wheels from a copy of the sources; install torch first, then the wheels under the pins."""
    work = tmp_path_factory.mktemp("wheels")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    wheel_dir = work / "dist"
    for package in PACKAGES:
        # Build from a copy: the shared source tree gets no build/ directory and no stale egg-info is reused.
        source = shutil.copytree(
            REPO_ROOT / package,
            work / "src" / package,
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
        )
        build = ("pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheel_dir, source)
        _run(sys.executable, "-m", *build, cwd=work)
    wheels = sorted(wheel_dir.glob("*.whl"))
    timings["build"] = time.perf_counter() - start

    start = time.perf_counter()
    venv = work / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=work)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", TORCH, cwd=work)
    torch_version = _installed(python, work)["torch"]
    timings["torch"] = time.perf_counter() - start

    start = time.perf_counter()
    _run(python, "-m", "pip", "install", "-q", "-c", CONSTRAINTS, *wheels, cwd=work)
    timings["wheels"] = time.perf_counter() - start
    print("\nfresh venv: " + ", ".join(f"{step} {seconds:.0f} s" for step, seconds in timings.items()))
    return {"work": work, "venv": venv, "python": python, "wheels": wheels, "torch_version": torch_version}


def test_both_wheels_are_built(fresh_venv: dict) -> None:
    assert [w.name.split("-")[0] for w in fresh_venv["wheels"]] == ["modelexport_core", "modelexport_text"]


def test_only_core_and_text_are_installed_over_the_first_installed_torch(fresh_venv: dict) -> None:
    installed = _installed(fresh_venv["python"], fresh_venv["work"])
    assert sorted(name for name in installed if name.startswith("modelexport")) == [
        "modelexport-core",
        "modelexport-text",
    ]
    assert installed["torch"] == fresh_venv["torch_version"]  # the pins kept the torch installed first
    assert installed["torch"].split("+")[0] == TORCH.split("==")[1]
    assert [name for name in installed if name.startswith("nvidia-")] == []  # no CUDA build came along
    lines = CONSTRAINTS.read_text().splitlines()
    pins = dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))
    for name in ("transformers", "optimum", "onnx", "onnxruntime"):
        assert installed[name] == pins[name], name


def test_plugins_list_shows_exactly_core_and_text(fresh_venv: dict) -> None:
    run = run_modelexport(
        "plugins", "list", "--json", env=_clean_env(), executable=str(fresh_venv["venv"] / "bin" / "modelexport")
    )
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert [(row["plugin"], row["distribution"], row["targets"]) for row in rows] == [
        ("core", "modelexport-core", ["cpu"]),
        ("qnn", "modelexport-core", ["qnn-htp"]),
        ("text", "modelexport-text", []),
    ]


def test_the_qnn_target_without_its_extra_names_the_extra(fresh_venv: dict, tmp_path: Path) -> None:
    """The wheels were installed without modelexport-core[qnn]: onnxruntime-qnn is not there."""
    assert "onnxruntime-qnn" not in _installed(fresh_venv["python"], fresh_venv["work"])
    run = run_modelexport(
        "validate",
        tmp_path,
        "--target",
        "qnn-htp",
        env=_clean_env(),
        executable=str(fresh_venv["venv"] / "bin" / "modelexport"),
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.user_error_lines() == [
        "Error: Target qnn-htp is not available on this machine: pip install 'modelexport-core[qnn]'"
    ]


def test_exporting_an_image_model_asks_for_the_vision_plugin(fresh_venv: dict, tiny_vit_dir: Path, tmp_path):
    out_dir = tmp_path / "vit-onnx"
    run = run_modelexport(
        "export", tiny_vit_dir, out_dir, env=_clean_env(), executable=str(fresh_venv["venv"] / "bin" / "modelexport")
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    lines = run.user_error_lines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "pip install modelexport-vision" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_a_text_model_exports_and_validates_from_the_wheels(fresh_venv: dict, tiny_bert_dir: Path, tmp_path):
    out_dir = tmp_path / "bert-onnx"
    options = ("--task", "text-classification", *TINY_BERT_SHAPE_OPTIONS)
    run = run_modelexport(
        "export",
        tiny_bert_dir,
        out_dir,
        *options,
        env=_clean_env(),
        executable=str(fresh_venv["venv"] / "bin" / "modelexport"),
    )
    assert run.returncode == 0, run.stderr
    assert "PASS optimum" in run.stdout
    assert {"model.onnx", "config.json", "tokenizer.json", "export_metadata.json"} <= set(os.listdir(out_dir))
