"""User errors in the middle of an export leave nothing behind, --force replaces, an unsupported task lists the
supported ones (the other error rows are the table in test_hostile_user.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import modelexport_core
from modelexport_core import ModelExportError, hookimpl
from modelexport_core.plugins.manager import get_plugin_manager
from modelexport_text import TextModality

from conftest import TINY_BERT_SHAPE_OPTIONS, CliExport, assert_user_error, invoke


def snapshot(directory: Path) -> dict[str, bytes]:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in files}


def test_task_the_model_does_not_support_lists_the_supported_ones(tiny_bert_dir: Path, tmp_path: Path):
    from transformers import AutoConfig

    from modelexport_core.exporter.tasks import supported_tasks

    run = invoke("export", tiny_bert_dir, tmp_path / "out", "--task", "image-classification")
    line = assert_user_error(run, "image-classification", "bert")
    supported = supported_tasks(AutoConfig.from_pretrained(tiny_bert_dir))
    assert {"text-classification", "question-answering", "fill-mask"} <= set(supported)
    assert line.endswith(", ".join(supported))
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_an_existing_out_dir(tiny_bert_forced_export: CliExport) -> None:
    run, out_dir = tiny_bert_forced_export.run, tiny_bert_forced_export.out_dir
    assert run.returncode == 0, run.stderr
    assert not (out_dir / "stale.txt").exists()
    assert (out_dir / "model.onnx").is_file()
    metadata = json.loads((out_dir / "export_metadata.json").read_text())
    assert "stale.txt" not in {entry["path"] for entry in metadata["files"]}
    assert [p.name for p in out_dir.parent.iterdir()] == [out_dir.name]  # no .partial-* / .old-* left


class FailingCopyPlugin:
    """Registers a text modality that fails in the middle of an export: after model.onnx is written, while the
    preprocessor files are saved (a plugin registered later replaces a modality of the same name)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.called_with: list[Path] = []
        plugin = self

        class FailingText(TextModality):
            def save_preprocessor(self, source: str, out_dir: Path, hub_kwargs: Any) -> None:
                plugin.called_with.append(out_dir)
                assert (out_dir / "model.onnx").is_file()  # the failure really is in the middle
                raise plugin.error

        self.modality = FailingText()

    @hookimpl
    def register_modalities(self, register: Any) -> None:
        register(self.modality)


@pytest.fixture
def failing_copy(monkeypatch: pytest.MonkeyPatch):
    """Register a FailingCopyPlugin on the process's plugin manager; unregister it afterwards."""
    monkeypatch.delenv("MODELEXPORT_LOAD_PLUGINS", raising=False)
    get_plugin_manager.cache_clear()
    registered: list[FailingCopyPlugin] = []

    def register(error: Exception) -> FailingCopyPlugin:
        plugin = FailingCopyPlugin(error)
        get_plugin_manager().register(plugin, name="failing-copy")
        registered.append(plugin)
        return plugin

    try:
        yield register
    finally:
        for plugin in registered:
            get_plugin_manager().unregister(plugin)
        get_plugin_manager.cache_clear()


def test_failure_in_the_middle_leaves_no_out_dir_and_no_temporary_dir(tiny_bert_dir, tmp_path, failing_copy):
    plugin = failing_copy(ModelExportError("throw-away plugin refuses to copy the configs"))
    out_dir = tmp_path / "new" / "deeper" / "out"
    run = invoke("export", tiny_bert_dir, out_dir, "--task", "text-classification", *TINY_BERT_SHAPE_OPTIONS)
    assert_user_error(run, "throw-away plugin refuses to copy the configs")
    assert len(plugin.called_with) == 1 and plugin.called_with[0].name.startswith(".out.partial-")
    assert list(tmp_path.iterdir()) == []  # not OUT_DIR, not its staging dir, not the parents it created


def test_failure_in_the_middle_of_a_forced_export_keeps_the_old_out_dir(tiny_bert_dir, tmp_path, failing_copy):
    failing_copy(RuntimeError("a bug in a plugin"))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "model.onnx").write_bytes(b"the previous export")
    with pytest.raises(RuntimeError, match="a bug in a plugin"):
        modelexport_core.export(
            tiny_bert_dir, out_dir, task="text-classification", batch_size=2, sequence_length=16, force=True
        )
    assert snapshot(out_dir) == {"model.onnx": b"the previous export"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
