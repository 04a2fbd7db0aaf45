"""The qnn-htp column of the README's compatibility matrix, as data: one row per (task, tiny model builder).

`tests/test_qnn_matrix.py` measures every row in `make test`; `python scripts/qnn_matrix.py` measures them
again and prints the markdown rows (with the deviation of a plain export beside the qnn-htp export's).
A new task gets its column by adding one `MatrixRow`.
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import support_path  # noqa: F401  (tests/ on sys.path: the tiny model builders)
from tiny_audio_models import write_tiny_audio_classifier, write_tiny_ctc
from tiny_models import write_spread_text_model
from tiny_multimodal_models import CLIP_IMAGE_SIZE, write_tiny_clip, write_tiny_layoutlm
from tiny_vision_models import BUILDERS, DETECTION_HEIGHT, DETECTION_WIDTH

BATCH_SIZE = 4  # above 1, so that a batch row computed wrongly shows
TEXT_SHAPES = {"sequence_length": 16}
DETECTION_SHAPES = {"height": DETECTION_HEIGHT, "width": DETECTION_WIDTH}
AUDIO_SHAPES = {"audio_sequence_length": 2000}  # 1/8 s: the simulator's time grows with the frames
CLIP_SHAPES = {
    "input_shapes": {"pixel_values": [BATCH_SIZE, 3, CLIP_IMAGE_SIZE, CLIP_IMAGE_SIZE], "input_ids": [BATCH_SIZE, 16]}
}


@dataclass(frozen=True)
class MatrixRow:
    """A task, the tiny model that stands for it, its builder (writes the model into a directory), export shapes.

    `in_make_test`: measured by the test suite too (one model per task, the CTC head aside: its Wav2Vec2
    encoder is the audio classifier's; the others by the script only).
    `text_session_model`: the test suite's session-wide text model of this task (conftest's `text_package`,
    the same builder at BATCH_SIZE x 16), so the suite exports it once for every text test.
    """

    task: str
    model: str
    build: Callable[[Path], Path]
    shapes: dict[str, int] = field(default_factory=dict)
    in_make_test: bool = True
    text_session_model: bool = False

    @property
    def id(self) -> str:
        return f"{self.task}-{self.model}"


def _text(task: str) -> MatrixRow:
    return MatrixRow(
        task, "BERT", functools.partial(write_spread_text_model, task=task), TEXT_SHAPES, text_session_model=True
    )


ROWS = [
    *(
        _text(task)
        for task in (
            "feature-extraction",
            "fill-mask",
            "question-answering",
            "text-classification",
            "token-classification",
            "zero-shot-classification",
        )
    ),
    MatrixRow("image-classification", "ViT", BUILDERS["vit"]),
    MatrixRow("image-classification", "ResNet", BUILDERS["resnet"], in_make_test=False),
    MatrixRow("image-classification", "ConvNeXt", BUILDERS["convnext"], in_make_test=False),
    MatrixRow("object-detection", "DETR", BUILDERS["detr"], DETECTION_SHAPES),
    MatrixRow("object-detection", "YOLOS", BUILDERS["yolos"], DETECTION_SHAPES, in_make_test=False),
    MatrixRow("image-segmentation", "SegFormer", BUILDERS["segformer"]),
    MatrixRow("audio-classification", "Wav2Vec2", write_tiny_audio_classifier, AUDIO_SHAPES),
    MatrixRow("automatic-speech-recognition", "Wav2Vec2 CTC", write_tiny_ctc, AUDIO_SHAPES, in_make_test=False),
    MatrixRow("zero-shot-image-classification", "CLIP", write_tiny_clip, CLIP_SHAPES),
    MatrixRow("document-question-answering", "LayoutLM v1", write_tiny_layoutlm, TEXT_SHAPES),
]


@dataclass(frozen=True)
class MatrixResult:
    """One row measured: every node on QNN or not, and the largest output deviation relative to the output."""

    row: MatrixRow
    all_on_qnn: bool
    deviation: float | None

    def cell(self) -> str:
        placed = "yes" if self.all_on_qnn else "no"
        return placed if self.deviation is None else f"{placed}, {self.deviation:.2%}"


def export_row(row: MatrixRow, workdir: Path, target: str | None = "qnn-htp", quantize: str | None = None) -> Path:
    """Build the row's tiny model and export it at BATCH_SIZE (with `target`'s rewrites when given, at the
    `quantize` precision when given, whatever its agreement: the matrix reports it)."""
    from modelexport_core import export
    from modelexport_core.quiet import quieted

    model_dir = workdir / "model" if (workdir / "model").is_dir() else row.build(workdir / "model")
    out_dir = workdir / f"package-{target or 'plain'}-{quantize or 'fp32'}"
    with quieted("transformers", stdout=True):
        export(
            model_dir, out_dir, task=row.task, batch_size=BATCH_SIZE, target=target, quantize=quantize,
            min_agreement=0.0, validate=False, **row.shapes,
        )  # fmt: skip
    return out_dir


def gate_of(package: Path) -> str:
    """The agreement with fp32 as the matrix shows it (`top1_agreement 1.0000`), and whether the default gate
    (0.99) would let the package be written."""
    from modelexport_core.quantize.gate import DEFAULT_MIN_AGREEMENT

    gate = json.loads((package / "export_metadata.json").read_text())["quantization"]
    refused = "" if gate["value"] >= DEFAULT_MIN_AGREEMENT else f" (below {DEFAULT_MIN_AGREEMENT}: the gate refuses it)"
    return f"{gate['metric']} {gate['value']:.4f}{refused}"


def measure_w8a16(row: MatrixRow, workdir: Path) -> str:
    """The w8a16 cell: placement and deviation on the HTP and the agreement with fp32, or why there is none."""
    from modelexport_core import ModelExportError

    try:
        package = export_row(row, workdir, quantize="w8a16")
    except ModelExportError as err:
        return f"no: {err}"
    return f"{measure(row, package).cell()}; {gate_of(package)}"


def measure(row: MatrixRow, package: Path) -> MatrixResult:
    """`validate --target qnn-htp` on the package: placement from onnxruntime, deviation from the CPU."""
    from modelexport_core.targets.registry import get_target
    from modelexport_core.targets.validate import validate_on_target

    report = validate_on_target(package, get_target("qnn-htp"))
    deviation = max((d.relative for d in report.deviations), default=None)
    return MatrixResult(row, not report.fallback, deviation)


def markdown(
    after: list[MatrixResult], before: list[MatrixResult] | None = None, w8a16: list[str] | None = None
) -> str:
    """The matrix rows: task, model, qnn-htp cell (and the plain export's and the w8a16 export's when given)."""
    header = "| task | tiny model | qnn-htp: all nodes on QNN, max deviation |"
    header += " plain export (no --target) |" if before else ""
    header += " w8a16: on QNN, deviation; agreement with fp32 |" if w8a16 else ""
    lines = [header, "|---" * header.count(" |") + "|"]
    for index, result in enumerate(after):
        cells = [result.row.task, result.row.model, result.cell()] + ([before[index].cell()] if before else [])
        lines.append("| " + " | ".join(cells + ([w8a16[index]] if w8a16 else [])) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """Measure every row (qnn-htp export, and a plain export beside it) and print the markdown."""
    after: list[MatrixResult] = []
    before: list[MatrixResult] = []
    w8a16: list[str] = []
    for row in ROWS:
        with tempfile.TemporaryDirectory() as scratch:
            workdir = Path(scratch)
            after.append(measure(row, export_row(row, workdir)))
            before.append(measure(row, export_row(row, workdir, target=None)))
            w8a16.append(measure_w8a16(row, workdir))
        print(f"measured {row.id}", file=sys.stderr)
    print(markdown(after, before, w8a16))


if __name__ == "__main__":
    main(sys.argv[1:])
