"""Single-file packages: a lone model.onnx serves as its package does, and unpacks to a package validate passes."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from modelexport_core import AutoModelForONNX, ONNXAutoProcessor, create_pipeline, export
from modelexport_core.package.layout import METADATA_FILE, set_model_metadata
from modelexport_core.package.single_file import KEY_EMBEDDED_FILES

from conftest import assert_user_error, run_modelexport

TEXTS = ["my name is john", "paris", "the quick brown fox and i live in paris"]


def _images() -> list:
    from modelexport_vision.samples import synthetic_image

    return [synthetic_image(40 + i, 30, seed=i) for i in range(3)]


def _waveforms() -> list:
    return [np.random.RandomState(i).randn(900 + 300 * i).astype(np.float32) for i in range(3)]


def _lone(package: Path, directory: Path) -> Path:
    directory.mkdir()
    return Path(shutil.copy(package / "model.onnx", directory / "model.onnx"))


def _cases(text_model, tiny_vit_dir: Path, root: Path) -> dict:
    from tiny_audio_models import write_tiny_audio_classifier

    return {  # modality: (source, task, export options, inputs)
        "text": (text_model("text-classification"), "text-classification", {"sequence_length": 16}, TEXTS),
        "vision": (tiny_vit_dir, "image-classification", {}, _images()),
        "audio": (write_tiny_audio_classifier(root / "audio"), "audio-classification", {}, _waveforms()),
    }


@pytest.mark.parametrize("modality", ["text", "vision", "audio"])
def test_a_lone_model_file_serves_as_its_package(modality, text_model, tiny_vit_dir: Path, tmp_path: Path) -> None:
    source, task, options, inputs = _cases(text_model, tiny_vit_dir, tmp_path)[modality]
    export(source, tmp_path / "package", task=task, batch_size=2, **options)
    lone = _lone(tmp_path / "package", tmp_path / "lone")
    assert create_pipeline(task, lone)(inputs) == create_pipeline(task, tmp_path / "package")(inputs)
    assert repr(ONNXAutoProcessor.from_model(lone)) == repr(ONNXAutoProcessor.from_model(tmp_path / "package"))
    assert [p.name for p in lone.parent.iterdir()] == ["model.onnx"]  # nothing written beside it


def test_unpack_writes_back_the_package_validate_passes(text_package, tmp_path: Path) -> None:
    package = text_package("token-classification", 2)
    lone = _lone(package, tmp_path / "lone")
    unpacked = run_modelexport("unpack", lone, tmp_path / "unpacked")
    assert unpacked.returncode == 0, unpacked.stderr
    assert sorted(p.name for p in (tmp_path / "unpacked").iterdir()) == sorted(p.name for p in package.iterdir())
    for original in package.iterdir():
        if original.name != METADATA_FILE:
            assert (tmp_path / "unpacked" / original.name).read_bytes() == original.read_bytes()
    same = json.loads((tmp_path / "unpacked" / METADATA_FILE).read_text())
    assert same == json.loads((package / METADATA_FILE).read_text())
    validated = run_modelexport("validate", tmp_path / "unpacked")
    assert validated.returncode == 0 and "PASS metadata_bound" in validated.stdout, validated.stdout


def test_a_tampered_embedded_file_is_a_user_error(text_package, tmp_path: Path) -> None:
    lone = _lone(text_package("text-classification", 2), tmp_path / "lone")
    graph = onnx.load(lone)
    embedded = json.loads({p.key: p.value for p in graph.metadata_props}[KEY_EMBEDDED_FILES])
    config = json.loads(base64.b64decode(embedded["config.json"]))
    embedded["config.json"] = base64.b64encode(json.dumps({**config, "num_labels": 7}).encode()).decode()
    set_model_metadata(graph, {KEY_EMBEDDED_FILES: json.dumps(embedded)})
    onnx.save(graph, lone)
    assert_user_error(
        run_modelexport("unpack", lone, tmp_path / "out"), "embedded config.json does not match its recorded sha256"
    )
    assert not (tmp_path / "out").exists()
    with pytest.raises(Exception, match=r"embedded config\.json does not match"):
        create_pipeline("text-classification", lone)


def test_a_lone_graph_of_a_bucketed_package_needs_its_weights(text_model, tmp_path: Path) -> None:
    """Bucket graphs share model.onnx.data: model.onnx alone fails in one line; with the weights it serves at its
    own length, the bucket files beside it as further lengths."""
    task = "text-classification"
    export(text_model(task), tmp_path / "package", task=task, batch_size=2, sequence_length=[8, 16])
    lone = _lone(tmp_path / "package", tmp_path / "lone")
    assert_user_error(run_modelexport("unpack", lone, tmp_path / "out"), "copy model.onnx.data", "model_seq8.onnx")
    with pytest.raises(Exception, match=r"keeps part of its package in other files: copy model.onnx.data beside it$"):
        AutoModelForONNX.from_pretrained(lone)
    shutil.copy(tmp_path / "package" / "model.onnx.data", lone.parent)
    served = create_pipeline(task, lone)(TEXTS)
    full = create_pipeline(task, tmp_path / "package")(TEXTS)
    assert [a["label"] for a in served] == [a["label"] for a in full]
    assert np.allclose([a["score"] for a in served], [a["score"] for a in full], atol=1e-5)


def test_unpack_refuses_what_it_cannot_unpack(optimum_package, tmp_path: Path) -> None:
    plain = optimum_package("text-classification", True) / "model.onnx"
    assert_user_error(run_modelexport("unpack", plain, tmp_path / "out"), "embeds no package")
    assert_user_error(run_modelexport("unpack", tmp_path / "missing.onnx", tmp_path / "out"), "No ONNX model at")
    assert not (tmp_path / "out").exists()
