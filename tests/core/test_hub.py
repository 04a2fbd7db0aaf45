"""Hub ids, online: served by a local stand-in for the Hub's HTTP API (the real Hub cannot be reached here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli_env, run_modelexport
from fake_hub import COMMIT, fake_hub

REPO = "acme/tiny-bert"


@pytest.fixture(scope="module")
def hub_export(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("hub")
    with fake_hub({REPO: tiny_bert_dir}) as (endpoint, requests):
        run = run_modelexport(
            "export",
            REPO,
            out / "pkg",
            "--revision",
            "v1",
            "--token",
            "hf_secret",
            "--cache-dir",
            out / "cache",
            "--sequence-length",
            "16",
            env=cli_env(HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="0"),
        )
    return run, out, requests


def test_a_hub_id_exports_with_its_revision_token_and_cache_dir(hub_export) -> None:
    run, out, requests = hub_export
    assert run.returncode == 0, run.stderr
    metadata = json.loads((out / "pkg" / "export_metadata.json").read_text())
    assert metadata["source_model"] == REPO and metadata["shapes"]["input_ids"] == [1, 16]
    downloads = [r for r in requests if "/resolve/" in r["path"]]
    fetched = {Path(r["path"]).name for r in downloads if r["method"] == "GET"}
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt"} <= fetched
    # v1, or the commit the Hub resolved v1 to (snapshots download by commit)
    assert all(r["path"].startswith((f"/{REPO}/resolve/v1/", f"/{REPO}/resolve/{COMMIT}/")) for r in downloads)
    assert any(r["path"] == f"/api/models/{REPO}/revision/v1" for r in requests)
    assert all(r["auth"] == "Bearer hf_secret" for r in downloads)  # weights too: a private model loads
    assert (out / "cache" / "models--acme--tiny-bert").is_dir()


def test_an_unknown_hub_id_online_is_a_one_line_error(tiny_bert_dir: Path, tmp_path: Path) -> None:
    with fake_hub({REPO: tiny_bert_dir}) as (endpoint, _):
        run = run_modelexport(
            "export",
            "acme/no-such-model",
            tmp_path / "pkg",
            "--cache-dir",
            tmp_path / "cache",
            env=cli_env(HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="0"),
        )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.user_error_lines()) == 1
    assert run.user_error_lines()[0].startswith("Error: Cannot load the config of acme/no-such-model")
    assert not (tmp_path / "pkg").exists()
