"""`--json` on every command: one JSON document on stdout and nothing else there; errors stay one line on stderr
with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import TINY_BERT_SHAPE_OPTIONS, assert_user_error, run_modelexport


def _document(run) -> dict:
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)  # the whole of stdout is one document


def test_export_json_reports_the_metadata_with_the_validation_and_the_timings(tiny_bert_dir: Path, tmp_path) -> None:
    run = run_modelexport("export", tiny_bert_dir, tmp_path / "out", *TINY_BERT_SHAPE_OPTIONS, "--json")
    printed = _document(run)
    assert printed == json.loads((tmp_path / "out" / "export_metadata.json").read_text())
    assert printed["validation"]["ok"] and {"load", "export", "validate"} <= set(printed["timings"])
    assert "> Loading tiny-bert" in run.stderr.splitlines()  # progress stays on stderr


def test_validate_json_reports_every_check(tiny_bert_export) -> None:
    printed = _document(run_modelexport("validate", tiny_bert_export.out_dir, "--json"))
    assert printed["ok"] and [c["name"] for c in printed["checks"]][:2] == ["files", "metadata_bound"]


def test_validate_target_json_reports_every_graph(tiny_bert_export) -> None:
    printed = _document(run_modelexport("validate", tiny_bert_export.out_dir, "--target", "cpu", "--json"))
    (graph,) = printed["graphs"]
    assert printed["ok"] and graph["ok"] and graph["graph"] == "model.onnx" and not graph["fallback"]
    assert graph["deviations"][0]["deviation"] == 0.0 and graph["deviations"][0]["psnr"] is None  # identical


@pytest.mark.parametrize("command", ["validate", "inspect", "compile"])
def test_errors_under_json_stay_one_line_on_stderr(command: str, tmp_path: Path) -> None:
    extra = ("--target", "qnn-htp") if command == "compile" else ()
    run = run_modelexport(command, tmp_path / "missing", *extra, "--json")
    assert_user_error(run)
    assert run.stdout == ""
