"""Multimodal packages end to end: CLIP zero-shot image classification and LayoutLM v1 document QA.

Each tiny model (tiny_multimodal_models: weights spread so answers depend on the input) is exported once:
CLIP with a batch per input (2 images, 3 candidate texts of 16 tokens), LayoutLM at 2 x 24 tokens. Answers of
`create_pipeline` are compared with the transformers PyTorch pipeline's on the same inputs.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from optimum.onnxruntime import ORTModelForZeroShotImageClassification
from transformers import (
    AutoModelForDocumentQuestionAnswering,
    CLIPModel,
    CLIPProcessor,
    DocumentQuestionAnsweringPipeline,
    ZeroShotImageClassificationPipeline,
    pipeline,
)
from typer.testing import CliRunner

from modelexport_core import (
    FixedShapeWarning,
    ModelExportError,
    ONNXAutoProcessor,
    PluginMissingError,
    create_pipeline,
    export,
    validate_optimum_compatibility,
)
from modelexport_core.cli import app
from modelexport_core.package.axes import batch_axes
from modelexport_core.plugins.manager import LOAD_PLUGINS_ENV, get_plugin_manager, hook
from modelexport_core.quiet import quieted
from modelexport_core.serve.adapter import FixedBatchModel
from modelexport_multimodal import ImageTextModality, ONNXProcessor, ORTModelForDocumentQuestionAnswering
from modelexport_text import ONNXTokenizer
from modelexport_vision import ONNXImageProcessor
from modelexport_vision.samples import synthetic_image

from tiny_models import WORDS
from tiny_multimodal_models import CLIP_IMAGE_SIZE, write_tiny_clip, write_tiny_layoutlm

ATOL = 1e-4
IMAGE_BATCH, TEXT_BATCH, CLIP_TOKENS = 2, 3, 16
DOC_BATCH, DOC_TOKENS = 2, 24
CLIP_SHAPES = {
    "pixel_values": [IMAGE_BATCH, 3, CLIP_IMAGE_SIZE, CLIP_IMAGE_SIZE],
    "input_ids": [TEXT_BATCH, CLIP_TOKENS],
}
LABELS = ["cat", "dog", "bird", "city", "movie", "weather", "apple"]
# (width, height) and PIL mode of the images: any size, any mode.
IMAGES = [((40, 50), "RGB"), ((640, 480), "RGB"), ((17, 90), "L"), ((32, 32), "RGBA"), ((300, 20), "P")]
WORD_BOXES = [
    (word, [10 + 60 * (i % 8), 10 + 30 * (i // 8), 60 + 60 * (i % 8), 30 + 30 * (i // 8)])
    for i, word in enumerate(
        [
            "john",
            "lives",
            "in",
            "paris",
            "and",
            "works",
            "for",
            "google",
            ".",
            "mary",
            "lives",
            "in",
            "london",
            ",",
            "the",
            "capital",
        ]
    )
]
QUESTIONS = ["where does john live", "who works for google", "what is the capital", "mary"]


def quiet() -> contextlib.AbstractContextManager[None]:
    """Hide the libraries' chatter (slow-processor notices, 'not supported for task' logs)."""
    return quieted("transformers", level=logging.CRITICAL, stderr=True)


def images(count: int) -> list[Any]:
    return [synthetic_image(w, h, seed, mode) for seed, ((w, h), mode) in enumerate((IMAGES * count)[:count])]


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip")


@pytest.fixture(scope="module")
def clip_export(clip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The CLIP package (2 images, 3 texts x 16 tokens, validated) and its export metadata."""
    out_dir = tmp_path_factory.mktemp("exports") / "clip"
    with quiet():
        metadata = export(clip_dir, out_dir, task="zero-shot-image-classification", input_shapes=CLIP_SHAPES)
    return out_dir, metadata


@pytest.fixture(scope="module")
def clip_package(clip_export: tuple[Path, dict[str, Any]]) -> Path:
    return clip_export[0]


@pytest.fixture(scope="module")
def layoutlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_layoutlm(tmp_path_factory.mktemp("models") / "tiny-layoutlm")


@pytest.fixture(scope="module")
def layoutlm_package(layoutlm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("exports") / "layoutlm"
    with quiet():
        export(
            layoutlm_dir,
            out_dir,
            task="document-question-answering",
            batch_size=DOC_BATCH,
            sequence_length=DOC_TOKENS,
            validate=False,
        )
    return out_dir


@pytest.fixture(scope="module")
def clip_pipelines(clip_dir: Path, clip_package: Path) -> tuple[Any, Any]:
    """(create_pipeline over the package, the PyTorch pipeline over the source)."""
    with quiet():
        return (
            create_pipeline("zero-shot-image-classification", clip_package),
            pipeline("zero-shot-image-classification", model=str(clip_dir), framework="pt"),
        )


@pytest.fixture(scope="module")
def document_pipelines(layoutlm_dir: Path, layoutlm_package: Path) -> tuple[Any, Any]:
    with quiet():
        return (
            create_pipeline("document-question-answering", layoutlm_package),
            pipeline("document-question-answering", model=str(layoutlm_dir), framework="pt"),
        )


@pytest.fixture
def only_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Load only the named plugins for one test: only_plugins("core,text")."""

    def load(names: str) -> None:
        monkeypatch.setenv(LOAD_PLUGINS_ENV, names)
        get_plugin_manager.cache_clear()

    yield load
    get_plugin_manager.cache_clear()


def assert_same_answers(ours: Any, reference: Any, keys: tuple[str, ...]) -> None:
    """Same answers in the same order (by `keys`), scores within ATOL."""
    assert len(ours) == len(reference)
    for mine, theirs in zip(ours, reference, strict=True):
        if isinstance(mine, list):
            assert_same_answers(mine, theirs, keys)
            continue
        assert {k: mine[k] for k in keys} == {k: theirs[k] for k in keys}
        assert mine["score"] == pytest.approx(theirs["score"], abs=ATOL)


# -------------------------------------------------------------------------------------- export (item 2)


def test_clip_export_fixes_a_batch_per_input_and_validates(clip_export: tuple[Path, dict[str, Any]]) -> None:
    package, metadata = clip_export
    assert metadata["modality"] == "multimodal"
    assert metadata["validation"]["ok"], metadata["validation"]
    graph = onnx.load(package / "model.onnx", load_external_data=False).graph
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*graph.input, *graph.output]}
    assert dims["pixel_values"] == [IMAGE_BATCH, 3, CLIP_IMAGE_SIZE, CLIP_IMAGE_SIZE]
    assert dims["input_ids"] == dims["attention_mask"] == [TEXT_BATCH, CLIP_TOKENS]
    assert dims["logits_per_image"] == [IMAGE_BATCH, TEXT_BATCH]
    assert dims["logits_per_text"] == [TEXT_BATCH, IMAGE_BATCH]
    assert metadata["dim_names"]["pixel_values"]["0"] == metadata["dim_names"]["logits_per_image"]["0"]
    files = {entry["path"] for entry in metadata["files"]}
    assert {"preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"} <= files  # the processor's files
    result = CliRunner().invoke(app, ["validate", str(package)])
    assert result.exit_code == 0, result.output
    assert "ORTModelForZeroShotImageClassification loaded and ran one forward" in result.output


def test_document_export_is_served_by_the_plugins_ortmodel(layoutlm_dir: Path, layoutlm_package: Path) -> None:
    """Optimum's LayoutLM config has no QA outputs and its QA ORTModel drops `bbox`: the plugin supplies both."""
    ort_model = ORTModelForDocumentQuestionAnswering.from_pretrained(layoutlm_package)
    assert set(ort_model.input_names) == {"input_ids", "bbox", "attention_mask", "token_type_ids"}
    tokenizer = ONNXAutoProcessor.from_model(layoutlm_package)
    assert isinstance(tokenizer, ONNXTokenizer) and (tokenizer.batch_size, tokenizer.sequence_length) == (2, 24)
    encoding = tokenizer(
        [["what", "is", "it"], ["who"]],
        [["paris", "and", "london"], ["john"]],
        is_split_into_words=True,
        return_tensors="pt",
    )
    bbox = torch.randint(0, 500, (2, DOC_TOKENS, 1)).repeat(1, 1, 4) + torch.tensor([0, 0, 100, 100])
    ours = ort_model(**encoding, bbox=bbox)
    reference = AutoModelForDocumentQuestionAnswering.from_pretrained(layoutlm_dir)(**encoding, bbox=bbox)
    real = encoding["attention_mask"].bool()
    for name in ("start_logits", "end_logits"):
        assert torch.allclose(ours[name][real], reference[name][real], atol=ATOL)
    report = validate_optimum_compatibility(layoutlm_package)
    assert report.ok, report.first_failure()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--input-shape", "input_ids"], "is not NAME=d0,d1,... of positive integers"),
        (["--input-shape", "input_ids=3,0"], "is not NAME=d0,d1,... of positive integers"),
        (["--input-shape", "input_ids=3,16", "--input-shape", "input_ids=4,16"], "names input_ids twice"),
        (["--input-shape", "token_ids=3,16"], "names no input of this model: token_ids (its inputs: pixel_values"),
        (["--input-shape", "input_ids=3"], "has 1 dims; input_ids has at least 2"),
        (["--input-shape", "input_ids=3,16", "--input-shape", "attention_mask=4,16"], "text_batch_size 4 but"),
        (["--input-shape", "input_ids=3,16", "--sequence-length", "8"], "gives sequence_length 16 but"),
        (["--input-shape", "pixel_values=2,3,32,32,1"], "does not fit pixel_values, which takes 4 dims"),
    ],
)
def test_bad_input_shapes_are_one_line_errors(clip_dir: Path, tmp_path: Path, options: list[str], message: str):
    result = CliRunner().invoke(
        app, ["export", str(clip_dir), str(tmp_path / "out"), "--task", "zero-shot-image-classification", *options]
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if not line.startswith(">")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert not (tmp_path / "out").exists()


def test_layoutlm_question_answering_names_the_document_task(layoutlm_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelExportError, match="--task document-question-answering"):
        export(layoutlm_dir, tmp_path / "out", task="question-answering")


# ------------------------------------------------------------------ the batch adapter over two batch axes


@pytest.fixture(scope="module")
def clip_adapter(clip_dir: Path, clip_package: Path) -> tuple[FixedBatchModel, ONNXProcessor, CLIPModel]:
    """(the adapter over the package's ORTModel with its recorded batch axes, its processor, the PyTorch model)."""
    from modelexport_core.package.shapes import detect_shapes

    detected = detect_shapes(clip_package / "model.onnx")
    axes = batch_axes(clip_package / "model.onnx", detected.input_shapes, detected.shapes["batch_size"])
    adapter = FixedBatchModel(ORTModelForZeroShotImageClassification.from_pretrained(clip_package), 2, axes)
    with quiet():
        return adapter, ONNXAutoProcessor.from_model(clip_package), CLIPModel.from_pretrained(clip_dir)


@pytest.mark.parametrize(("image_count", "text_count"), [(2, 3), (1, 1), (5, 7), (1, 4), (3, 3)])
def test_adapter_fills_each_batch_axis_on_its_own(
    clip_adapter: tuple[Any, Any, Any], image_count: int, text_count: int
) -> None:
    """Any number of images and texts through a model fixed at 2 images x 3 texts: PyTorch's outputs."""
    adapter, processor, torch_model = clip_adapter
    assert adapter.batch_axes.sizes == {"image_batch_size": IMAGE_BATCH, "text_batch_size": TEXT_BATCH}
    inputs = processor(
        images=images(image_count), text=[f"a photo of a {w}" for w in WORDS[:text_count]], return_tensors="pt"
    )
    ours = adapter(**inputs)
    with torch.no_grad():
        reference = torch_model(**inputs)
    assert ours.logits_per_image.shape == (image_count, text_count)
    for name in ("logits_per_image", "logits_per_text", "text_embeds", "image_embeds"):
        assert torch.allclose(ours[name], reference[name], atol=ATOL), name


def test_batch_axes_are_read_from_a_lone_model_file(clip_package: Path, tmp_path: Path) -> None:
    """Without export_metadata.json the axis names come from the model's own metadata_props."""
    shutil.copy(clip_package / "model.onnx", tmp_path / "model.onnx")
    shapes = {"pixel_values": [2, 3, 32, 32], "input_ids": [3, 16], "attention_mask": [3, 16]}
    axes = batch_axes(tmp_path / "model.onnx", shapes, 2)
    assert axes.inputs == {
        "pixel_values": "image_batch_size",
        "input_ids": "text_batch_size",
        "attention_mask": "text_batch_size",
    }
    assert axes.output_axes("logits_per_text") == {0: "text_batch_size", 1: "image_batch_size"}


# ------------------------------------------------------------------------------ ONNXProcessor (items 1, 5)


def test_auto_processor_returns_an_onnx_processor_that_round_trips(clip_package: Path, tmp_path: Path) -> None:
    with quiet():
        processor = ONNXAutoProcessor.from_model(clip_package)
    assert isinstance(processor, ONNXProcessor) and processor.shape_source == "export_metadata"
    assert (processor.batch_size, processor.text_batch_size) == (IMAGE_BATCH, TEXT_BATCH)
    assert isinstance(processor.tokenizer, ONNXTokenizer) and processor.tokenizer.batch_size == TEXT_BATCH
    assert isinstance(processor.image_processor, ONNXImageProcessor)
    assert processor.image_processor.batch_size == IMAGE_BATCH
    processor.save_pretrained(tmp_path)
    with quiet():
        reloaded = CLIPProcessor.from_pretrained(tmp_path)  # loadable back as its own class
    again = ONNXProcessor(reloaded, processor.shapes)
    texts, pictures = ["a photo of a cat", "dog"], images(3)
    first = processor(images=pictures, text=texts, return_tensors="pt")
    second = again(images=pictures, text=texts, return_tensors="pt")
    assert first.keys() == second.keys() == {"input_ids", "attention_mask", "pixel_values"}
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_onnx_processor_names_the_dims_it_lacks(clip_dir: Path) -> None:
    with quiet():
        processor = CLIPProcessor.from_pretrained(clip_dir)
    with pytest.raises(ModelExportError, match="needs text_batch_size, sequence_length in its shapes"):
        ONNXProcessor(processor, {"batch_size": 1, "num_channels": 3, "height": 8, "width": 8})


@pytest.fixture(scope="module")
def fixed_processor(clip_package: Path) -> ONNXProcessor:
    with quiet():
        return ONNXAutoProcessor.from_model(clip_package)


@settings(max_examples=15, deadline=None)
@given(
    texts=st.lists(st.lists(st.sampled_from(WORDS), min_size=0, max_size=30).map(" ".join), min_size=1, max_size=5),
    sizes=st.lists(st.tuples(st.integers(1, 120), st.integers(4, 120)), min_size=1, max_size=4),
    mode=st.sampled_from(["RGB", "L", "RGBA"]),
)
def test_any_texts_and_images_give_exactly_the_fixed_shapes(
    fixed_processor: ONNXProcessor, texts: list[str], sizes: list[tuple[int, int]], mode: str
) -> None:
    pictures = [synthetic_image(w, h, seed, mode) for seed, (w, h) in enumerate(sizes)]
    with warnings.catch_warnings(), quiet():
        warnings.simplefilter("ignore", FixedShapeWarning)  # long texts are truncated: tested below
        encoding = fixed_processor(images=pictures, text=texts, return_tensors="np")
    assert encoding["input_ids"].shape == encoding["attention_mask"].shape == (len(texts), CLIP_TOKENS)
    assert encoding["pixel_values"].shape == (len(pictures), 3, CLIP_IMAGE_SIZE, CLIP_IMAGE_SIZE)


def test_a_text_longer_than_the_fixed_length_is_truncated_with_a_warning(fixed_processor: ONNXProcessor) -> None:
    with pytest.warns(FixedShapeWarning, match="truncated to the fixed 16"):
        encoding = fixed_processor(text=[" ".join(WORDS[:40])], return_tensors="np")
    assert encoding["input_ids"].shape == (1, CLIP_TOKENS)


# --------------------------------------------------------------------------------- routing (item 4)


def test_processor_goes_to_the_pipelines_tokenizer_and_image_processor(fixed_processor: ONNXProcessor) -> None:
    routed = hook().route_processor(pipeline_class=ZeroShotImageClassificationPipeline, processor=fixed_processor)
    assert routed == {"tokenizer": fixed_processor.tokenizer, "image_processor": fixed_processor.image_processor}

    class WholeProcessorPipeline(ZeroShotImageClassificationPipeline):
        _load_processor = True

    assert hook().route_processor(pipeline_class=WholeProcessorPipeline, processor=fixed_processor) == {
        "processor": fixed_processor
    }


def test_a_plain_processor_is_wrapped_and_routed(clip_dir: Path, clip_package: Path) -> None:
    with quiet():
        pipe = create_pipeline(
            "zero-shot-image-classification", clip_package, data_processor=CLIPProcessor.from_pretrained(clip_dir)
        )
    assert isinstance(pipe.tokenizer, ONNXTokenizer) and pipe.tokenizer.batch_size == TEXT_BATCH
    assert isinstance(pipe.image_processor, ONNXImageProcessor)
    assert isinstance(pipe.model.model, ORTModelForZeroShotImageClassification)


# ------------------------------------------------------------------------ parity with PyTorch (item 3)


@pytest.mark.parametrize(("image_count", "label_count"), [(1, 1), (2, 3), (5, 7), (3, 4)])
def test_zero_shot_answers_equal_pytorchs(clip_pipelines: tuple[Any, Any], image_count: int, label_count: int):
    ours, reference = clip_pipelines
    pictures, labels = images(image_count), LABELS[:label_count]
    with quiet():
        assert_same_answers(
            ours(pictures, candidate_labels=labels), reference(pictures, candidate_labels=labels), ("label",)
        )


def test_document_answers_equal_pytorchs(document_pipelines: tuple[Any, Any]) -> None:
    ours, reference = document_pipelines
    assert isinstance(ours, DocumentQuestionAnsweringPipeline) and isinstance(ours.tokenizer, ONNXTokenizer)
    for question in QUESTIONS:
        assert_same_answers(
            ours(image=None, question=question, word_boxes=WORD_BOXES[:8], top_k=3),
            reference(image=None, question=question, word_boxes=WORD_BOXES[:8], top_k=3),
            ("answer", "start", "end"),
        )
    batch = [{"image": None, "question": q, "word_boxes": WORD_BOXES[:6]} for q in QUESTIONS[:3]]  # 3 on batch 2
    assert_same_answers(ours(batch, top_k=2), reference(batch, top_k=2), ("answer", "start", "end"))


def test_a_long_document_is_read_in_strided_spans(document_pipelines: tuple[Any, Any]) -> None:
    """A document longer than the 24 fixed tokens: spans with the pipeline's stride, as PyTorch's at that length."""
    ours, reference = document_pipelines
    for question in QUESTIONS[:2]:
        assert_same_answers(
            ours(image=None, question=question, word_boxes=WORD_BOXES, top_k=2),
            reference(image=None, question=question, word_boxes=WORD_BOXES, top_k=2, max_seq_len=DOC_TOKENS),
            ("answer", "start", "end"),
        )


# ------------------------------------------------------------------------------------- missing plugin


def test_without_the_multimodal_plugin_the_error_names_it(clip_package: Path, only_plugins: Any) -> None:
    only_plugins("core,text,vision")
    with pytest.raises(PluginMissingError, match="pip install modelexport-multimodal"):
        ONNXAutoProcessor.from_model(clip_package)


# ------------------------------------------------------------------------------------- benchmark (item 6)


def test_benchmark_times_zero_shot_classification_with_candidate_labels(clip_dir: Path, clip_package: Path) -> None:
    """Four labels on a package fixed at three texts: every runner, the raw session too, fills both batch axes."""
    from modelexport_core.bench.benchmark import RUNNERS, benchmark_json, run_benchmark

    rows = run_benchmark(clip_package, clip_dir, count=2, warmup=0, repeats=1)
    assert [row.inputs for row in rows] == ["small", "large"]
    for row in benchmark_json(rows):
        assert (row["count"], row["batch_size"]) == (2, IMAGE_BATCH)
        assert set(row["seconds"]) == set(RUNNERS) and min(row["seconds"].values()) > 0
        assert row["ratio_to_pytorch"]["pytorch"] == 1.0


# ------------------------------------------------------------------------------ the README's matrix script


def test_matrix_row_of_zero_shot_image_classification(clip_dir: Path, clip_package: Path) -> None:
    from matrix import cases, matrix_row

    case = next(case for case in cases() if case.task == "zero-shot-image-classification")
    with quiet():
        row = matrix_row(case, clip_dir, clip_package)
    assert (row.ort_class, row.processor) == ("ORTModelForZeroShotImageClassification", "ONNXProcessor")
    assert row.difference <= ATOL and row.ratio > 0
    assert row.markdown().startswith("| zero-shot-image-classification | CLIP | input_ids 3x16, pixel_values 2x3x32x32")


def test_save_preprocessor_writes_the_processors_files(clip_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"already there")
    with quiet():
        ImageTextModality().save_preprocessor(str(clip_dir), tmp_path, {})
        copied = CLIPProcessor.from_pretrained(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"preprocessor_config.json", "tokenizer.json", "vocab.json", "merges.txt", "model.onnx"} <= names
    assert (tmp_path / "model.onnx").read_bytes() == b"already there"
    assert (
        copied.tokenizer("a photo of a cat")["input_ids"]
        == CLIPProcessor.from_pretrained(clip_dir).tokenizer("a photo of a cat")["input_ids"]
    )
