"""Vision packages end to end: export, validate, create_pipeline answers equal the PyTorch pipeline's.

Every model is a tiny one of tiny_vision_models (weights spread so answers depend on the image), exported once
per session per batch size. The detectors keep the aspect ratio in their own processor (shortest edge 32,
longest 64) and are exported at 32x48, so parity is exact for images of aspect 3:2 (width:height).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from transformers import AutoImageProcessor, DetrImageProcessor, pipeline

from modelexport_core import ModelExportError, ONNXAutoProcessor, create_pipeline, export
from modelexport_core.package.validate import validate_optimum_compatibility
from modelexport_core.quiet import quieted
from modelexport_vision import ONNXImageProcessor, ORTModelForObjectDetection
from modelexport_vision.samples import synthetic_image

from conftest import cli_env, run_modelexport
from tiny_vision_models import BUILDERS, DETECTION_HEIGHT, DETECTION_WIDTH, LABELS, SEGMENT_LABELS

SCORE_ATOL = 1e-4
BOX_ATOL = 1e-3
TASKS = {
    "vit": "image-classification",
    "resnet": "image-classification",
    "convnext": "image-classification",
    "detr": "object-detection",
    "yolos": "object-detection",
    "segformer": "image-segmentation",
}
# Enough for every answer: all labels, every query's box.
CALL_KWARGS = {
    "image-classification": {"top_k": 3},
    "object-detection": {"threshold": 0.0},
    "image-segmentation": {},
}
# Sizes (width, height). Heights 1 and 3 are left out of parity: the stock processors read those images as
# channels-first (see test_the_pipeline_raises_only_where_pytorch_does).
ANY_SIZES = [(32, 32), (640, 480), (57, 91), (200, 150), (33, 400), (1000, 10), (5, 2), (48, 32)]
DETECTION_SIZES = [(48, 32), (96, 64), (300, 200), (600, 400), (1500, 1000), (3, 2)]  # aspect 3:2
OTHER_ASPECT_SIZES = [(40, 40), (91, 57), (57, 91), (640, 480), (1000, 30)]
MODES = ["RGB", "RGBA", "L", "P", "CMYK", "I;16", "F", "1"]
MEASURED: dict[str, float] = {}  # the largest differences seen, printed at the end (pytest -s)


def images_of(sizes: list[tuple[int, int]], modes: list[str] = ("RGB",)) -> list[Image.Image]:
    return [synthetic_image(w, h, seed, mode=modes[seed % len(modes)]) for seed, (w, h) in enumerate(sizes)]


def quiet() -> contextlib.AbstractContextManager[None]:
    """Hide the libraries' chatter (slow-processor notices, 'not supported for task' logs)."""
    return quieted("transformers", level=logging.CRITICAL, stderr=True)


def record(what: str, value: float) -> None:
    MEASURED[what] = max(MEASURED.get(what, 0.0), float(value))


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def vision_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: model kind -> its saved tiny model + image processor, built once per session."""
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = BUILDERS[kind](tmp_path_factory.mktemp("vision-models") / f"tiny-{kind}")
        return built[kind]

    return get


@pytest.fixture(scope="session")
def vision_package(vision_model: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Callable:
    """Factory: (kind, batch_size) -> its package, exported once per session through the Python API.

    DETR at batch 1 is exported by the CLI instead (test_cli_export_and_validate), and reused here.
    """
    exported: dict[tuple[str, int], Path] = {}

    def get(kind: str, batch_size: int = 1) -> Path:
        if (kind, batch_size) not in exported:
            out_dir = tmp_path_factory.mktemp("vision-packages") / f"{kind}-b{batch_size}"
            size = {"height": DETECTION_HEIGHT, "width": DETECTION_WIDTH} if TASKS[kind] == "object-detection" else {}
            if (kind, batch_size) == ("detr", 1):
                run = run_modelexport(
                    "export",
                    vision_model(kind),
                    out_dir,
                    "--height",
                    DETECTION_HEIGHT,
                    "--width",
                    DETECTION_WIDTH,
                )
                assert run.returncode == 0, run.stderr
                exported[kind, batch_size] = out_dir
                exported["detr-cli-run"] = run  # type: ignore[index]
            else:
                with quiet():
                    export(
                        vision_model(kind),
                        out_dir,
                        task=TASKS[kind],
                        batch_size=batch_size,
                        validate=False,
                        **size,
                    )
                exported[kind, batch_size] = out_dir
        return exported[kind, batch_size]

    get.exported = exported  # type: ignore[attr-defined]
    return get


@pytest.fixture(scope="session")
def pytorch_pipeline(vision_model: Callable[[str], Path]) -> Callable[[str], Any]:
    """Factory: kind -> the transformers PyTorch pipeline on the source model (its own slow processor)."""
    made: dict[str, Any] = {}

    def get(kind: str) -> Any:
        if kind not in made:
            with quiet():
                made[kind] = pipeline(TASKS[kind], model=str(vision_model(kind)), framework="pt")
        return made[kind]

    return get


@pytest.fixture(scope="session")
def onnx_pipeline(vision_package: Callable) -> Callable[[str, int], Any]:
    """Factory: (kind, batch_size) -> create_pipeline over its package."""
    made: dict[tuple[str, int], Any] = {}

    def get(kind: str, batch_size: int = 1) -> Any:
        if (kind, batch_size) not in made:
            with quiet():
                made[kind, batch_size] = create_pipeline(TASKS[kind], vision_package(kind, batch_size))
        return made[kind, batch_size]

    return get


@pytest.fixture(scope="session", autouse=True)
def report_measured() -> Iterator[None]:
    yield
    if MEASURED:
        print("\nlargest differences from the PyTorch pipeline:", json.dumps(MEASURED, indent=1))


# ----------------------------------------------------------------------------------------------- comparing


def assert_same_answers(task: str, ours: list[Any], theirs: list[Any], where: str) -> None:
    """Same labels (in order), scores within 1e-4, same boxes, same masks."""
    assert len(ours) == len(theirs), where
    for index, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        at = f"{where}, image {index}"
        assert [a["label"] for a in mine] == [b["label"] for b in ref], at
        if task == "image-segmentation":
            for a, b in zip(mine, ref, strict=True):
                assert np.array_equal(np.asarray(a["mask"]), np.asarray(b["mask"])), f"{at}: mask {a['label']}"
                assert a["score"] == b["score"]  # None for semantic segmentation
            continue
        diff = max(abs(a["score"] - b["score"]) for a, b in zip(mine, ref, strict=True))
        record(f"{task} score", diff)
        assert diff <= SCORE_ATOL, at
        if task == "object-detection":
            assert [a["box"] for a in mine] == [b["box"] for b in ref], at


def raw_boxes(pipe: Any, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores, labels and float boxes (original pixels) of every query, as the pipeline computes them before
    rounding boxes to ints; also returns the model's normalized pred_boxes."""
    with torch.no_grad():
        outputs = pipe.forward(pipe.preprocess(image))
    found = pipe.image_processor.post_process_object_detection(outputs, 0.0, outputs["target_size"])[0]
    return found["boxes"], outputs["pred_boxes"][0], outputs["target_size"][0]


# ---------------------------------------------------------------------------------------------------- export


def test_cli_export_and_validate(vision_package: Callable, vision_model: Callable[[str], Path]) -> None:
    """`modelexport export` of DETR at 32x48 validates (the plugin's ORTModel loads it); `validate` agrees."""
    package = vision_package("detr", 1)
    run = vision_package.exported["detr-cli-run"]
    assert "pixel_values[1, 3, 32, 48]" in run.stdout
    assert "PASS optimum: ORTModelForObjectDetection loaded and ran one forward (logits, pred_boxes)" in run.stdout
    validated = run_modelexport("validate", package)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "FAIL" not in validated.stdout


def test_packages_hold_the_processor_and_fixed_vision_shapes(
    vision_package: Callable, vision_model: Callable[[str], Path]
) -> None:
    for kind, shape in [("detr", [1, 3, 32, 48]), ("vit", [1, 3, 32, 32]), ("segformer", [1, 3, 32, 32])]:
        package = vision_package(kind)
        metadata = json.loads((package / "export_metadata.json").read_text())
        assert metadata["modality"] == "vision" and metadata["task"] == TASKS[kind]
        assert metadata["shapes"] == {"pixel_values": shape}
        assert "preprocessor_config.json" in {entry["path"] for entry in metadata["files"]}
        props = {p.key: p.value for p in onnx.load(package / "model.onnx", load_external_data=False).metadata_props}
        assert props["modelexport.modality"] == "vision"
        assert json.loads(props["modelexport.shapes"]) == {"pixel_values": shape}
        assert metadata["hierarchy"]["tagged_nodes"] == metadata["hierarchy"]["nodes"]
        # The processor file loads as the original class.
        processor = AutoImageProcessor.from_pretrained(package, use_fast=False)
        original = AutoImageProcessor.from_pretrained(vision_model(kind), use_fast=False)
        assert type(processor) is type(original) and processor.to_dict() == original.to_dict()
        auto = ONNXAutoProcessor.from_model(package / "model.onnx")
        assert isinstance(auto, ONNXImageProcessor) and auto.shape_source == "export_metadata"
        assert auto.shapes == dict(zip(["batch_size", "num_channels", "height", "width"], shape, strict=True))
        assert type(auto.wrapped) is type(processor)


@pytest.mark.parametrize("kind", ["vit", "segformer"])
def test_api_exports_validate(kind: str, vision_package: Callable) -> None:
    report = validate_optimum_compatibility(vision_package(kind))
    assert report.ok, report.first_failure()


def test_requested_sizes_win_over_the_config(vision_model: Callable[[str], Path], tmp_path: Path) -> None:
    """ConvNeXt's config says image_size 32; --height/--width 48 is honoured (Optimum alone ignores it)."""
    with quiet():
        metadata = export(vision_model("convnext"), tmp_path / "convnext-48", height=48, width=48, validate=False)
        assert metadata["shapes"] == {"pixel_values": [1, 3, 48, 48]}
        processor = ONNXAutoProcessor.from_model(tmp_path / "convnext-48")
        assert processor.fitting == {"size": {"shortest_edge": 48}}
        answers = create_pipeline("image-classification", tmp_path / "convnext-48")(images_of(ANY_SIZES[:3]))
    assert [len(answer) for answer in answers] == [3, 3, 3]


def test_a_size_the_model_cannot_take_is_a_one_line_user_error(
    vision_model: Callable[[str], Path], tmp_path: Path
) -> None:
    out_dir = tmp_path / "vit-64"
    with quiet(), pytest.raises(ModelExportError) as caught:
        export(vision_model("vit"), out_dir, height=64, width=64, validate=False)
    message = str(caught.value)
    assert "\n" not in message
    assert "height 64 (its config gives 32)" in message and "doesn't match model" in message
    assert not out_dir.exists() and not list(tmp_path.iterdir())


def test_plugins_list_shows_vision() -> None:
    run = run_modelexport("plugins", "list", "--json", env=cli_env())
    assert run.returncode == 0, run.stderr
    rows = {row["plugin"]: row for row in json.loads(run.stdout)}
    vision = rows["vision"]
    assert vision["distribution"] == "modelexport-vision"
    assert vision["modality"] == ["vision"]
    assert vision["tasks"] == ["image-classification", "object-detection", "image-segmentation"]
    assert vision["hooks"] == ["ort_model_class", "register_modalities"]


# ---------------------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_image_classification_matches_pytorch(kind: str, onnx_pipeline: Callable, pytorch_pipeline: Callable) -> None:
    images = images_of(ANY_SIZES, MODES)
    with quiet():
        ours = onnx_pipeline(kind)(images, top_k=3)
        theirs = pytorch_pipeline(kind)(images, top_k=3)
    assert_same_answers("image-classification", ours, theirs, kind)
    assert {answer[0]["label"] for answer in ours} <= set(LABELS.values())


@pytest.mark.parametrize("kind", ["detr", "yolos"])
def test_object_detection_matches_pytorch_at_the_fixed_aspect_ratio(
    kind: str, onnx_pipeline: Callable, pytorch_pipeline: Callable
) -> None:
    images = images_of(DETECTION_SIZES, MODES)
    with quiet():
        ours = onnx_pipeline(kind)(images, threshold=0.0)
        theirs = pytorch_pipeline(kind)(images, threshold=0.0)
    assert_same_answers("object-detection", ours, theirs, kind)
    assert all(len(answer) == 5 for answer in ours)  # every query at threshold 0
    for image in images:  # the float boxes behind the int ones
        with quiet():
            mine, _, _ = raw_boxes(onnx_pipeline(kind), image.convert("RGB"))
            ref, _, _ = raw_boxes(pytorch_pipeline(kind), image.convert("RGB"))
        record("object-detection box (pixels)", (mine - ref).abs().max())
        assert torch.allclose(mine, ref, atol=BOX_ATOL), kind


@pytest.mark.parametrize("kind", ["detr", "yolos"])
def test_object_detection_at_other_aspect_ratios_gives_boxes_in_original_pixels(
    kind: str, onnx_pipeline: Callable, pytorch_pipeline: Callable
) -> None:
    """Any image is squeezed to 32x48 and the model's normalized boxes are scaled back by its original size.

    PyTorch sees such an image at its own aspect ratio, another input: on these random tiny models the answers
    then differ (labels, boxes), so what holds for every size is checked instead of parity.
    """
    pipe = onnx_pipeline(kind)
    for image in images_of(OTHER_ASPECT_SIZES):
        width, height = image.size
        with quiet():
            answers = pipe(image, threshold=0.0)
            boxes, normalized, target_size = raw_boxes(pipe, image)
        assert target_size.tolist() == [height, width]
        assert len(answers) == 5 and {a["label"] for a in answers} <= set(LABELS.values())
        assert all(0 <= a["score"] <= 1 for a in answers)
        center_x, center_y, box_w, box_h = normalized.unbind(-1)
        expected = torch.stack(
            [
                (center_x - box_w / 2) * width,
                (center_y - box_h / 2) * height,
                (center_x + box_w / 2) * width,
                (center_y + box_h / 2) * height,
            ],
            dim=-1,
        )
        assert torch.allclose(boxes, expected, atol=BOX_ATOL)
        for box in boxes.tolist():  # each box is centred inside the image, corners in order
            assert box[0] <= box[2] and box[1] <= box[3]
            assert 0 <= (box[0] + box[2]) / 2 <= width and 0 <= (box[1] + box[3]) / 2 <= height


@pytest.mark.parametrize("kind", ["detr", "yolos"])
def test_extreme_aspect_ratios_answer_where_pytorch_cannot(
    kind: str, onnx_pipeline: Callable, pytorch_pipeline: Callable
) -> None:
    image = images_of([(4000, 2)])[0]  # the processor's aspect-keeping resize rounds the short edge to 0
    with quiet(), pytest.raises(ValueError, match="height and width must be > 0"):
        pytorch_pipeline(kind)(image, threshold=0.0)
    with quiet():
        answers = onnx_pipeline(kind)(image, threshold=0.0)
    assert len(answers) == 5


def test_image_segmentation_matches_pytorch(onnx_pipeline: Callable, pytorch_pipeline: Callable) -> None:
    images = images_of(ANY_SIZES, MODES)
    with quiet():
        ours = onnx_pipeline("segformer")(images)
        theirs = pytorch_pipeline("segformer")(images)
    assert_same_answers("image-segmentation", ours, theirs, "segformer")
    for image, answer in zip(images, ours, strict=True):
        assert {a["label"] for a in answer} <= set(SEGMENT_LABELS.values())
        assert all(a["mask"].size == image.size for a in answer)  # masks at the original size


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("kind", ["vit", "detr", "segformer"])
def test_any_number_of_images_on_a_fixed_batch(
    kind: str, batch_size: int, onnx_pipeline: Callable, pytorch_pipeline: Callable
) -> None:
    task = TASKS[kind]
    sizes = DETECTION_SIZES if task == "object-detection" else ANY_SIZES
    images = images_of((sizes * 2)[:9])
    with quiet():
        reference = pytorch_pipeline(kind)(images, **CALL_KWARGS[task])
        pipe = onnx_pipeline(kind, batch_size)
        for count in (0, 1, 3, 4, 5, 9):
            for pipeline_batch in (None, 3, 4):
                extra = {} if pipeline_batch is None else {"batch_size": pipeline_batch}
                answers = pipe(images[:count], **CALL_KWARGS[task], **extra)
                assert_same_answers(task, answers, reference[:count], f"{kind} b{batch_size} x{count} {extra}")
        single = pipe(images[0], **CALL_KWARGS[task])  # one image, not in a list
    assert_same_answers(task, [single], reference[:1], f"{kind} b{batch_size} single")


# ---------------------------------------------------------------------------------------------- properties


def _pipeline_inputs() -> st.SearchStrategy:
    sizes = st.tuples(st.integers(1, 4000), st.integers(1, 3000))
    image = st.builds(
        lambda size, mode, seed: synthetic_image(*size, seed % 7, mode=mode),
        sizes,
        st.sampled_from([*MODES, "La", "LA", "YCbCr", "HSV", "I"]),
        st.integers(0, 6),
    )
    small = st.builds(
        lambda size, mode: Image.new(mode, size),
        st.tuples(st.integers(1, 6), st.integers(1, 6)),
        st.sampled_from(MODES),
    )
    junk = st.one_of(
        st.none(),
        st.integers(),
        st.text(alphabet="abcxyz019+/=._-", max_size=20),
        st.builds(lambda n: np.zeros((n, n, 3), np.uint8), st.integers(1, 8)),
    )
    return st.one_of(image, small, st.lists(st.one_of(image, small), min_size=1, max_size=3), junk)


def _outcome(pipe: Any, inputs: Any) -> tuple[str, Any]:
    try:
        with quiet():
            return "ok", pipe(inputs, top_k=3)
    except Exception as err:  # the outcome under test
        return type(err).__name__, str(err)


def _read_as_channels_first(inputs: Any) -> bool:
    """Whether the stock processor misreads an input: an image 1 or 3 pixels high (channels-first guess)."""
    images = inputs if isinstance(inputs, list) else [inputs]
    return any(isinstance(image, Image.Image) and image.height in (1, 3) for image in images)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(inputs=_pipeline_inputs())
def test_the_pipeline_raises_only_where_pytorch_does(
    inputs: Any, onnx_pipeline: Callable, pytorch_pipeline: Callable
) -> None:
    ours, mine = _outcome(onnx_pipeline("vit"), inputs)
    theirs, reference = _outcome(pytorch_pipeline("vit"), inputs)
    if ours != "ok":
        assert theirs == ours, f"we raise {ours}: {mine}; PyTorch {theirs}"
        assert "\n" not in mine.strip()
    elif theirs == "ok" and not _read_as_channels_first(inputs):
        answers = mine if isinstance(inputs, list) else [mine]
        expected = reference if isinstance(inputs, list) else [reference]
        assert_same_answers("image-classification", answers, expected, "property")


# ---------------------------------------------------------------------------------------------------- Optimum


def test_optimum_loads_the_detection_package(
    vision_package: Callable, onnx_pipeline: Callable, pytorch_pipeline: Callable
) -> None:
    """Optimum's own ORTModelForCustomTasks and the plugin's ORTModelForObjectDetection both serve the stock
    transformers pipeline; create_pipeline also takes an ORTModel."""
    from optimum.onnxruntime import ORTModelForCustomTasks

    package = vision_package("detr")
    image = images_of([(300, 200)])[0]
    with quiet():
        expected = pytorch_pipeline("detr")(image, threshold=0.0)
        processor = DetrImageProcessor.from_pretrained(package)
        for model_class in (ORTModelForCustomTasks, ORTModelForObjectDetection):
            model = model_class.from_pretrained(package)
            outputs = model(pixel_values=torch.zeros(1, 3, 32, 48), pixel_mask=torch.ones(1, 32, 48))
            assert outputs.logits.shape == (1, 5, 4) and outputs.pred_boxes.shape == (1, 5, 4)
            stock = pipeline("object-detection", model=model, image_processor=processor)
            assert_same_answers("object-detection", [stock(image, threshold=0.0)], [expected], model_class.__name__)
        ort_model = ORTModelForObjectDetection.from_pretrained(package)
        answers = create_pipeline("object-detection", ort_model)(image, threshold=0.0)
        assert not ort_model(pixel_values=torch.zeros(1, 3, 32, 48), return_dict=False)[0].isnan().any()
    assert_same_answers("object-detection", [answers], [expected], "ORTModel given")


def test_benchmark_runs_for_image_classification(vision_package: Callable, vision_model: Callable) -> None:
    from modelexport_core.bench.benchmark import RUNNERS, run_benchmark

    rows = run_benchmark(vision_package("vit"), vision_model("vit"), count=2, warmup=0, repeats=1)
    assert [row.inputs for row in rows] == ["small", "large"]
    for row in rows:
        assert row.count == 2 and set(row.seconds) == set(RUNNERS)
        assert all(seconds > 0 for seconds in row.seconds.values())


def test_a_static_optimum_export_is_served(
    vision_model: Callable[[str], Path], pytorch_pipeline: Callable, tmp_path: Path
) -> None:
    """A package of `optimum-cli export onnx --no-dynamic-axes` (no modelexport metadata): graph shapes."""
    from optimum.exporters.onnx import main_export

    with quiet():
        main_export(
            str(vision_model("vit")),
            tmp_path,
            task="image-classification",
            do_validation=False,
            library_name="transformers",
            no_dynamic_axes=True,
            batch_size=2,
        )
        processor = ONNXAutoProcessor.from_model(tmp_path)
        images = images_of(ANY_SIZES[:5])
        answers = create_pipeline("image-classification", tmp_path)(images, top_k=3)
        reference = pytorch_pipeline("vit")(images, top_k=3)
    assert processor.shape_source == "graph"
    assert processor.shapes == {"batch_size": 2, "num_channels": 3, "height": 32, "width": 32}
    assert_same_answers("image-classification", answers, reference, "optimum static export")
