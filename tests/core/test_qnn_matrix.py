"""The qnn-htp column of the compatibility matrix: every supported task runs wholly on QNN, within tolerance."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from modelexport_core.targets.registry import apply_export_rewrites, get_target
from modelexport_core.targets.validate import DEFAULT_TOLERANCE

from conftest import TEXT_SEQUENCE_LENGTH
from qnn_matrix import (
    BATCH_SIZE,
    ROWS,
    TEXT_SHAPES,
    MatrixResult,
    MatrixRow,
    export_row,
    markdown,
    measure,
    measure_w8a16,
)

pytest.importorskip(
    "onnxruntime_qnn", reason="needs onnxruntime-qnn: pip install 'modelexport-core[qnn]' (make setup installs it)"
)

TEST_ROWS = [row for row in ROWS if row.in_make_test]
Measured = Callable[[MatrixRow], tuple[Path, MatrixResult]]


def qnn_package(row: MatrixRow, text_package: Callable[[str, int], Path], workdir: Path) -> Path:
    """The row exported for qnn-htp; a text row from the session's package plus the rewrites export applies."""
    if not row.text_session_model:
        return export_row(row, workdir)
    assert TEXT_SHAPES == {"sequence_length": TEXT_SEQUENCE_LENGTH}
    package = shutil.copytree(text_package(row.task, BATCH_SIZE), workdir / "package-qnn-htp")
    model_proto = onnx.load(package / "model.onnx")
    apply_export_rewrites(model_proto, get_target("qnn-htp"))
    onnx.save(model_proto, package / "model.onnx")
    return package


@pytest.fixture(scope="module")
def measured(text_package, tmp_path_factory: pytest.TempPathFactory) -> Measured:
    """A row's qnn-htp package and its measurement, made once per module whichever test asks first."""
    done: dict[str, tuple[Path, MatrixResult]] = {}

    def get(row: MatrixRow) -> tuple[Path, MatrixResult]:
        if row.id not in done:
            package = qnn_package(row, text_package, tmp_path_factory.mktemp(row.id))
            done[row.id] = package, measure(row, package)
        return done[row.id]

    return get


@pytest.mark.parametrize("row", TEST_ROWS, ids=[row.id for row in TEST_ROWS])
def test_every_task_runs_wholly_on_qnn_within_tolerance(row: MatrixRow, measured: Measured) -> None:
    _, result = measured(row)
    assert result.all_on_qnn, f"{row.id}: nodes fall back to the CPU"
    assert result.deviation is not None and result.deviation <= DEFAULT_TOLERANCE, result.cell()


@pytest.mark.parametrize("row", TEST_ROWS, ids=[row.id for row in TEST_ROWS])
def test_every_task_at_w8a16_runs_wholly_on_qnn_or_says_why_not(row: MatrixRow, tmp_path: Path) -> None:
    """The w8a16 column: every node on QNN and the agreement with fp32 measured; a modality without a corpus has
    nothing to calibrate with, and says so."""
    cell = measure_w8a16(row, tmp_path)
    if row.task in ("zero-shot-image-classification", "document-question-answering"):
        assert cell.startswith("no: w8a16 needs calibration inputs, and the "), cell
    else:
        assert cell.startswith("yes, ") and ("; cosine 0." in cell or "; top1_agreement " in cell), cell


def test_every_supported_task_has_a_row() -> None:
    """Every task of the first-party plugins (a third-party one, e.g. tests/third_party's, has no matrix row)."""
    from modelexport_core.plugins.manager import list_plugins

    first_party = {"text", "vision", "audio", "multimodal"}
    supported = {task for row in list_plugins() if row.plugin in first_party for task in row.tasks}
    assert supported == {row.task for row in ROWS}
    assert supported - {row.task for row in TEST_ROWS} == {"automatic-speech-recognition"}  # its encoder: above


def test_matrix_prints_one_markdown_row_per_measured_row(measured: Measured) -> None:
    results = [measured(row)[1] for row in TEST_ROWS[:2]]
    lines = markdown(results).splitlines()
    assert lines[0].startswith("| task | tiny model | qnn-htp") and len(lines) == len(results) + 2
    assert all(line.count("|") == 4 and "| yes, " in line for line in lines[2:])
    print("\n" + "\n".join(lines))


def test_compare_takes_real_images_through_the_packages_processor(measured: Measured, tmp_path: Path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from modelexport_core.cli import app

    package, _ = measured(next(row for row in TEST_ROWS if row.id == "image-classification-ViT"))
    image = tmp_path / "gradient.png"
    Image.fromarray((np.arange(48 * 64 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)).save(image)
    args = ["compare", str(package), "--target", "qnn-htp", "--image", str(image)]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    tree = json.loads(result.stdout)["tree"]
    assert tree["outputs"] == ["logits"] and tree["scale"] > 0
    assert {child["path"] for child in tree["children"]} == {"vit", "classifier"}
    both = CliRunner().invoke(app, [*args, "--text", "a cat"])
    assert both.exit_code == 2 and "Give --text or --image, not both" in both.stderr
