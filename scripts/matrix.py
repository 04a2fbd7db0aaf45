"""The README's compatibility matrix, from real runs on tiny models: `python scripts/matrix.py [OUT_DIR]`.

For every task the plugins serve, a tiny model is built from its config, exported (validated), loaded by its
ORTModel class, given its processor by `ONNXAutoProcessor`, and run through `create_pipeline` beside the
transformers PyTorch pipeline on the same inputs. The last column is the task's qnn-htp cell (all nodes on
QNN, max deviation), measured by `scripts/qnn_matrix.py` at its own fixed shapes when onnxruntime-qnn is installed.
Prints one markdown row per task.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelexport_core import ONNXAutoProcessor, create_pipeline, export, validate_optimum_compatibility
from modelexport_core.bench.runners import median_seconds
from modelexport_core.package.validate import fixed_shape_inputs
from modelexport_core.quiet import quieted
from modelexport_core.serve.models import ort_model_class
from modelexport_vision.samples import synthetic_image

import support_path  # noqa: F401  (tests/ on sys.path: the tiny model builders)

THREADS = 1  # for torch and onnxruntime alike
SAME_ANSWER_ATOL = 1e-3  # scores agree within 1e-4 in the tests; boxes (pixels) within 1e-3
HEADER = (
    "| task | tiny model | export: fixed input shapes | Optimum loads and runs it | ONNXAutoProcessor "
    "| create_pipeline = PyTorch pipeline | time create_pipeline / PyTorch | qnn-htp: all nodes on QNN, max deviation |"
    "\n|---|---|---|---|---|---|---|---|"
)


@dataclass
class MatrixRow:
    """One task through every stage; `ratio` is create_pipeline's median time over the PyTorch pipeline's."""

    task: str
    model: str
    shapes: str
    ort_class: str
    processor: str
    difference: float
    ratio: float
    qnn_htp: str = "not measured"

    def markdown(self) -> str:
        same = "yes" if self.difference <= SAME_ANSWER_ATOL else "NO"
        return (
            f"| {self.task} | {self.model} | {self.shapes} | {self.ort_class} | {self.processor} "
            f"| {same} (max diff {self.difference:.0e}) | {self.ratio:.2f} | {self.qnn_htp} |"
        )


@dataclass
class Case:
    """A task on one tiny model: how to build it, how to export it, what to ask both pipelines."""

    task: str
    model: str
    build: Callable[[Path], Path]
    inputs: list[Any]
    call_kwargs: dict[str, Any] = field(default_factory=dict)
    export_kwargs: dict[str, Any] = field(default_factory=dict)


def largest_difference(ours: Any, reference: Any) -> float:
    """The largest numeric difference between two answers of the same structure; differing labels are infinite."""
    ours, reference = (x.item() if isinstance(x, np.generic) else x for x in (ours, reference))
    if isinstance(ours, dict):
        if ours.keys() != reference.keys():
            return float("inf")
        return max((largest_difference(ours[k], reference[k]) for k in ours), default=0.0)
    if isinstance(ours, (list, tuple)):
        if len(ours) != len(reference):
            return float("inf")
        return max((largest_difference(a, b) for a, b in zip(ours, reference, strict=True)), default=0.0)
    if isinstance(ours, (int, float)) and not isinstance(ours, bool):
        return abs(float(ours) - float(reference))
    if hasattr(ours, "mode") and hasattr(ours, "size"):  # PIL masks
        return float(np.abs(np.asarray(ours, dtype=float) - np.asarray(reference, dtype=float)).max())
    return 0.0 if ours == reference else float("inf")


def single_threaded() -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = THREADS
    return options


def matrix_row(case: Case, source: Path, package: Path) -> MatrixRow:
    """Run one exported case through every stage of the matrix."""
    import torch
    from transformers import pipeline

    from modelexport_core.package.layout import read_export_metadata

    report = validate_optimum_compatibility(package)
    if not report.ok:
        raise AssertionError(f"{case.task}: {report.first_failure()}")
    ort_model = ort_model_class(case.task).from_pretrained(package, session_options=single_threaded())
    ort_model(**{k: torch.from_numpy(v) for k, v in fixed_shape_inputs(package).items()})
    processor = ONNXAutoProcessor.from_model(package)
    ours = create_pipeline(case.task, ort_model, data_processor=processor)
    torch.set_num_threads(THREADS)
    reference = pipeline(case.task, model=str(source), framework="pt")
    shapes = read_export_metadata(package)["shapes"]
    return MatrixRow(
        task=case.task,
        model=case.model,
        shapes=", ".join(f"{name} {'x'.join(map(str, dims))}" for name, dims in shapes.items()),
        ort_class=type(ort_model).__name__,
        processor=type(processor).__name__,
        difference=largest_difference(
            ours(case.inputs, **case.call_kwargs), reference(case.inputs, **case.call_kwargs)
        ),
        ratio=median_seconds(lambda: ours(case.inputs, **case.call_kwargs), warmup=1, repeats=3)
        / median_seconds(lambda: reference(case.inputs, **case.call_kwargs), warmup=1, repeats=3),
    )


def cases() -> list[Case]:
    """Every task the first-party plugins serve, on the tiny models of the test suite."""
    from modelexport_audio.samples import noise, speech_like, tone

    from tiny_audio_models import SAMPLING_RATE, write_tiny_audio_classifier, write_tiny_ctc
    from tiny_models import write_spread_text_model
    from tiny_multimodal_models import write_tiny_clip, write_tiny_layoutlm
    from tiny_vision_models import (
        DETECTION_HEIGHT,
        DETECTION_WIDTH,
        write_tiny_detr,
        write_tiny_segformer,
        write_tiny_vit,
    )

    texts = ["the cat is happy today", "my name is john and i live in paris", "what a terrible movie", "hello world"]
    images = [synthetic_image(w, h, seed) for seed, (w, h) in enumerate([(40, 50), (640, 480), (90, 17), (32, 32)])]
    wide = [synthetic_image(w, h, seed) for seed, (w, h) in enumerate([(48, 32), (300, 200), (96, 64)])]
    words = ["john", "lives", "in", "paris", "and", "works", "for", "google"]
    word_boxes = [(word, [10 + 60 * i, 10, 60 + 60 * i, 30]) for i, word in enumerate(words)]
    text_shapes = {"batch_size": 1, "sequence_length": 32}
    clips = [speech_like(6000, SAMPLING_RATE), tone(16000, SAMPLING_RATE), noise(3000)]
    audio_shapes = {"batch_size": 1, "audio_sequence_length": 16000}

    def text_case(task: str, inputs: list[Any], **call_kwargs: Any) -> Case:
        return Case(task, "BERT", lambda d: write_spread_text_model(d, task), inputs, call_kwargs, text_shapes)

    return [
        text_case("feature-extraction", texts),
        text_case("fill-mask", ["the cat is [MASK] today", "paris is the [MASK] of france"]),
        text_case(
            "question-answering",
            [{"question": q, "context": "john lives in paris and works for google."} for q in ("where?", "who works?")],
        ),
        text_case("text-classification", texts),
        text_case("token-classification", texts),
        text_case("zero-shot-classification", texts, candidate_labels=["cat", "weather", "movie"]),
        Case("image-classification", "ViT", write_tiny_vit, images, {"top_k": 3}, {"batch_size": 1}),
        Case(
            "object-detection",
            "DETR",
            write_tiny_detr,
            wide,
            {"threshold": 0.0},
            {"batch_size": 1, "height": DETECTION_HEIGHT, "width": DETECTION_WIDTH},
        ),
        Case("image-segmentation", "SegFormer", write_tiny_segformer, images, {}, {"batch_size": 1}),
        Case("audio-classification", "Wav2Vec2", write_tiny_audio_classifier, clips, {"top_k": 4}, audio_shapes),
        Case(
            "automatic-speech-recognition",
            "Wav2Vec2 CTC",
            write_tiny_ctc,
            [speech_like(40000, SAMPLING_RATE)],
            {"chunk_length_s": 1.0, "stride_length_s": 1 / 6},
            audio_shapes,
        ),
        Case(
            "zero-shot-image-classification",
            "CLIP",
            write_tiny_clip,
            images,
            {"candidate_labels": ["cat", "dog", "bird", "car"]},
            {"input_shapes": {"pixel_values": [1, 3, 32, 32], "input_ids": [4, 16]}},
        ),
        Case(
            "document-question-answering",
            "LayoutLM v1",
            write_tiny_layoutlm,
            [{"image": None, "question": q, "word_boxes": word_boxes} for q in ("where does john live", "who")],
            {},
            {"batch_size": 1, "sequence_length": 32},
        ),
    ]


def qnn_htp_cell(case: Case, workdir: Path) -> str:
    """The case's qnn-htp cell from its `scripts/qnn_matrix.py` row (exported with --target qnn-htp)."""
    import importlib.util

    import qnn_matrix

    if importlib.util.find_spec("onnxruntime_qnn") is None:
        return "not measured (needs modelexport-core[qnn])"
    row = next(row for row in qnn_matrix.ROWS if (row.task, row.model) == (case.task, case.model))
    return qnn_matrix.measure(row, qnn_matrix.export_row(row, workdir)).cell()


def main(out_dir: str | None = None) -> int:
    root = Path(out_dir or tempfile.mkdtemp(prefix="modelexport-matrix-"))
    print(HEADER)
    for case in cases():
        with quieted("transformers", "optimum", level=logging.CRITICAL, stderr=True):
            source = case.build(root / "models" / case.task)
            package = root / "packages" / case.task
            export(source, package, task=case.task, force=True, **case.export_kwargs)
            row = matrix_row(case, source, package)
            row.qnn_htp = qnn_htp_cell(case, root / "qnn-htp" / case.task)
        print(row.markdown(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
