"""Shape detection: each of the five sources of DESIGN.md on its own, and ONNXAutoProcessor on top of them."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import onnx
import pytest

from modelexport_core import (
    FixedShapeWarning,
    ModelExportError,
    ONNXAutoProcessor,
    PluginMissingError,
    create_pipeline,
    detect_shapes,
)
from modelexport_core.package.layout import METADATA_FILE, find_model_file
from modelexport_core.plugins.manager import LOAD_PLUGINS_ENV, get_plugin_manager
from modelexport_text import ONNXTokenizer

from conftest import OPTIMUM_STATIC_BATCH, TEXT_SEQUENCE_LENGTH

TASK = "text-classification"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
SEQ = TEXT_SEQUENCE_LENGTH


def _fixed(batch: int, sequence: int) -> dict[str, list[int]]:
    return {name: [batch, sequence] for name in INPUTS}


@pytest.fixture(scope="module")
def package(text_package: Callable[[str, int], Path]) -> Path:
    """A modelexport package: export_metadata.json and metadata_props both say batch 4 x 16."""
    return text_package(TASK, 4)


@pytest.fixture(scope="module")
def without_export_metadata(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package with export_metadata.json removed: the model's metadata_props still describe it."""
    copy = tmp_path_factory.mktemp("shapes") / "no-export-metadata"
    shutil.copytree(package, copy)
    (copy / METADATA_FILE).unlink()
    return copy


@pytest.fixture(scope="module")
def optimum_static(optimum_package: Callable[[str, bool], Path]) -> Path:
    """Optimum's own export with no_dynamic_axes (batch 2 x 16): no modelexport metadata, a static graph."""
    return optimum_package(TASK, True)


@pytest.fixture(scope="module")
def ort_format_model(optimum_static: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static Optimum model saved by onnxruntime in ORT format, alone in its directory."""
    import onnxruntime

    path = tmp_path_factory.mktemp("shapes") / "ort-format" / "model.ort"
    path.parent.mkdir()
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(path)
    options.add_session_config_entry("session.save_model_format", "ORT")
    options.log_severity_level = 3
    onnxruntime.InferenceSession(str(optimum_static / "model.onnx"), options, providers=["CPUExecutionProvider"])
    return path


@pytest.fixture(scope="module")
def optimum_dynamic(optimum_package: Callable[[str, bool], Path]) -> Path:
    """Optimum's default export: every input dim is dynamic."""
    return optimum_package(TASK, False)


@pytest.fixture(scope="module")
def dynamic_sequence_only(optimum_static: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static Optimum package with the sequence dim of every input made symbolic (batch stays 2)."""
    copy = tmp_path_factory.mktemp("shapes") / "dynamic-sequence"
    shutil.copytree(optimum_static, copy)
    model = onnx.load(copy / "model.onnx")
    for value in model.graph.input:
        value.type.tensor_type.shape.dim[1].dim_param = "sequence_length"
    onnx.save(model, copy / "model.onnx")
    return copy


# ------------------------------------------------------------------------------------------- the five sources


def test_source_export_metadata(package: Path) -> None:
    detected = detect_shapes(package)
    assert detected.source == "export_metadata"
    assert detected.modality == "text"
    assert detected.shapes == {"batch_size": 4, "sequence_length": SEQ}
    assert detected.input_shapes == _fixed(4, SEQ)
    assert detect_shapes(package / "model.onnx") == detected


def test_source_metadata_props(without_export_metadata: Path) -> None:
    detected = detect_shapes(without_export_metadata)
    assert (detected.source, detected.modality) == ("metadata_props", "text")
    assert detected.shapes == {"batch_size": 4, "sequence_length": SEQ}
    assert detected.input_shapes == _fixed(4, SEQ)


def test_unreadable_export_metadata_falls_through_to_metadata_props(package: Path, tmp_path: Path) -> None:
    copy = tmp_path / "corrupt"
    shutil.copytree(package, copy)
    (copy / METADATA_FILE).write_text("{ not json")
    assert detect_shapes(copy).source == "metadata_props"


def test_source_graph(optimum_static: Path) -> None:
    """Optimum's exporter writes no modelexport metadata: the graph's fixed input dims are read."""
    assert not (optimum_static / METADATA_FILE).exists()
    detected = detect_shapes(optimum_static)
    assert (detected.source, detected.modality) == ("graph", "text")
    assert detected.shapes == {"batch_size": OPTIMUM_STATIC_BATCH, "sequence_length": SEQ}
    assert detected.input_shapes == _fixed(OPTIMUM_STATIC_BATCH, SEQ)


def test_source_session(ort_format_model: Path) -> None:
    """An ORT-format model: onnx.load cannot parse it, onnxruntime's session reads its input shapes."""
    with pytest.raises(Exception):  # noqa: B017 - protobuf's DecodeError; the point is that onnx cannot
        onnx.load(ort_format_model, load_external_data=False)
    assert find_model_file(ort_format_model) == ort_format_model
    detected = detect_shapes(ort_format_model)
    assert (detected.source, detected.modality) == ("session", "text")
    assert detected.shapes == {"batch_size": OPTIMUM_STATIC_BATCH, "sequence_length": SEQ}
    assert detected.input_shapes == _fixed(OPTIMUM_STATIC_BATCH, SEQ)


def test_source_defaults_warns_naming_each_dynamic_dim(optimum_dynamic: Path) -> None:
    with pytest.warns(FixedShapeWarning) as caught:
        detected = detect_shapes(optimum_dynamic)
    assert (detected.source, detected.modality) == ("defaults", "text")
    assert detected.shapes == {"batch_size": 1, "sequence_length": 128}
    assert detected.input_shapes == {name: [None, None] for name in INPUTS}
    [warning] = [w for w in caught if issubclass(w.category, FixedShapeWarning)]
    assert "batch_size=1" in str(warning.message) and "sequence_length=128" in str(warning.message)
    assert str(optimum_dynamic / "model.onnx") in str(warning.message)


def test_defaults_fill_only_the_dynamic_dims(dynamic_sequence_only: Path) -> None:
    """A fixed batch with a symbolic sequence: the batch is kept; only sequence_length is defaulted, named."""
    with pytest.warns(FixedShapeWarning) as caught:
        detected = detect_shapes(dynamic_sequence_only)
    assert detected.source == "defaults"
    assert detected.shapes == {"batch_size": OPTIMUM_STATIC_BATCH, "sequence_length": 128}
    [warning] = [str(w.message) for w in caught if issubclass(w.category, FixedShapeWarning)]
    assert "sequence_length=128" in warning and "batch_size" not in warning


def test_a_static_package_does_not_warn(package: Path, optimum_static: Path, ort_format_model: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FixedShapeWarning)
        for model in (package, optimum_static, ort_format_model):
            detect_shapes(model)


# ------------------------------------------------------------------------------------------ ONNXAutoProcessor


@pytest.mark.parametrize(
    ("model", "source", "batch"),
    [
        ("package", "export_metadata", 4),
        ("without_export_metadata", "metadata_props", 4),
        ("optimum_static", "graph", OPTIMUM_STATIC_BATCH),
        ("ort_format_model", "session", OPTIMUM_STATIC_BATCH),
        ("optimum_dynamic", "defaults", 1),
    ],
)
def test_auto_processor_exposes_shapes_and_their_source(request, optimum_static, model, source, batch) -> None:
    model_path = request.getfixturevalue(model)
    hf_model_path = optimum_static if model == "ort_format_model" else None  # the .ort sits alone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FixedShapeWarning)
        tokenizer = ONNXAutoProcessor.from_model(model_path, hf_model_path=hf_model_path)
    sequence = 128 if source == "defaults" else SEQ
    assert isinstance(tokenizer, ONNXTokenizer)
    assert tokenizer.shape_source == source
    assert tokenizer.shapes == {"batch_size": batch, "sequence_length": sequence}
    assert (tokenizer.batch_size, tokenizer.sequence_length) == (batch, sequence)
    encoding = tokenizer(["hello world", "the cat"], return_tensors="np")
    assert encoding["input_ids"].shape == (2, sequence)


def test_auto_processor_without_processor_files_says_what_to_pass(ort_format_model: Path) -> None:
    with pytest.raises(ModelExportError, match="pass hf_model_path=") as caught:
        ONNXAutoProcessor.from_model(ort_format_model)
    assert "\n" not in str(caught.value)


def test_create_pipeline_serves_each_detected_package(without_export_metadata: Path, optimum_static: Path) -> None:
    for model, batch in ((without_export_metadata, 4), (optimum_static, OPTIMUM_STATIC_BATCH)):
        classifier = create_pipeline(TASK, model)
        assert classifier.model.batch_size == batch
        assert len(classifier(["hello world"] * 5, batch_size=3)) == 5


# --------------------------------------------------------------------------------------------- missing plugin


@pytest.fixture
def core_plugin_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Load no plugin but core's own (MODELEXPORT_LOAD_PLUGINS=core); the full set is restored afterwards."""
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "core")
    get_plugin_manager.cache_clear()
    try:
        yield
    finally:
        monkeypatch.undo()
        get_plugin_manager.cache_clear()


@pytest.mark.parametrize("model", ["package", "without_export_metadata", "optimum_static"])
def test_a_modality_no_plugin_serves_names_the_package_to_install(request, core_plugin_only, model) -> None:
    model_path = request.getfixturevalue(model)
    for call in (detect_shapes, ONNXAutoProcessor.from_model, lambda path: create_pipeline(TASK, path)):
        with pytest.raises(PluginMissingError, match="pip install modelexport-text") as caught:
            call(model_path)
        assert "\n" not in str(caught.value)


def test_plugins_are_back_after_the_missing_plugin_tests(package: Path) -> None:
    assert "text" in dict(get_plugin_manager().list_name_plugin())
    assert isinstance(ONNXAutoProcessor.from_model(package), ONNXTokenizer)
