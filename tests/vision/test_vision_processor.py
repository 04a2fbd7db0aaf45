"""ONNXImageProcessor and the vision hooks needing no export: every input becomes exactly the fixed shape."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image
from transformers import (
    AutoImageProcessor,
    BertTokenizerFast,
    ConvNextImageProcessor,
    DetrImageProcessor,
    SegformerImageProcessor,
    ViTImageProcessor,
    YolosImageProcessor,
)

from modelexport_core import FixedShapeProcessor, ModelExportError
from modelexport_vision import ONNXImageProcessor, VisionModality
from modelexport_vision import plugin as vision
from modelexport_vision.samples import sample_images, synthetic_image

# Every PIL mode Pillow creates (La cannot be converted to RGB in one step: it goes through LA).
MODES = [
    "1",
    "L",
    "P",
    "RGB",
    "RGBA",
    "CMYK",
    "YCbCr",
    "LAB",
    "HSV",
    "I",
    "F",
    "LA",
    "PA",
    "La",
    "RGBX",
    "RGBa",
    "I;16",
    "I;16L",
    "I;16B",
    "I;16N",
]
DETECTION = {"shortest_edge": 32, "longest_edge": 64}


def processors() -> dict[str, tuple[object, int, int]]:
    """Slow image processors as the tiny models save them, and the fixed (height, width) of their export."""
    return {
        "vit": (ViTImageProcessor(size={"height": 32, "width": 32}), 32, 32),
        "convnext": (ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875), 32, 32),
        "detr": (DetrImageProcessor(size=dict(DETECTION)), 32, 48),
        "yolos": (YolosImageProcessor(size=dict(DETECTION)), 32, 48),
        "segformer": (SegformerImageProcessor(size={"height": 32, "width": 32}), 32, 32),
        # Another size than the processor's own: ConvNeXt only takes a shortest edge, so 48x48 uses it...
        "convnext-48": (ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875), 48, 48),
        # ... and 32x48 (not square) is only reachable by resizing the processor's output.
        "convnext-32x48": (ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875), 32, 48),
    }


def wrapped(name: str, batch_size: int = 1, num_channels: int = 3) -> ONNXImageProcessor:
    processor, height, width = processors()[name]
    return ONNXImageProcessor(processor, batch_size, height, width, num_channels=num_channels)


SHARED = {name: wrapped(name) for name in processors()}  # one per kind for the property tests


def pixel_shape(encoding: object) -> tuple[int, ...]:
    return tuple(np.asarray(encoding["pixel_values"]).shape)


# ---- the fixed shape, whatever comes in ----


@pytest.mark.parametrize("name", list(processors()))
@pytest.mark.parametrize("mode", MODES)
def test_every_mode_gives_the_fixed_shape(name: str, mode: str) -> None:
    processor = SHARED[name]
    images = [Image.new(mode, size) for size in [(1, 1), (3, 1), (1, 3), (57, 91), (640, 480)]]
    assert pixel_shape(processor(images, return_tensors="np")) == (5, 3, processor.height, processor.width)


@settings(max_examples=25, deadline=None)
@example(name="detr", mode="RGBA", width=4000, height=3000)
@example(name="convnext-32x48", mode="I;16", width=1, height=3000)
@example(name="yolos", mode="P", width=4000, height=1)
@given(
    name=st.sampled_from(sorted(processors())),
    mode=st.sampled_from(MODES),
    width=st.integers(1, 4000),
    height=st.integers(1, 3000),
)
def test_any_size_and_mode_gives_exactly_the_fixed_shape(name: str, mode: str, width: int, height: int) -> None:
    processor = SHARED[name]
    encoding = processor(Image.new(mode, (width, height)), return_tensors="pt")
    assert encoding["pixel_values"].shape == (1, 3, processor.height, processor.width)
    assert encoding["pixel_values"].dtype == torch.float32
    assert torch.isfinite(encoding["pixel_values"]).all()


@settings(max_examples=25, deadline=None)
@given(
    layout=st.sampled_from(["HW", "HWC1", "HWC3", "HWC4", "CHW3"]),
    dtype=st.sampled_from([np.uint8, np.float32]),
    height=st.integers(1, 300),
    width=st.integers(5, 300),
    count=st.integers(1, 3),
)
def test_any_array_gives_exactly_the_fixed_shape(layout: str, dtype: type, height: int, width: int, count: int) -> None:
    shape = {
        "HW": (height, width),
        "HWC1": (height, width, 1),
        "HWC3": (height, width, 3),
        "HWC4": (height, width, 4),
        "CHW3": (3, height, width),
    }[layout]
    scale = 255 if dtype is np.uint8 else 1
    images = [(np.random.default_rng(i).random(shape) * scale).astype(dtype) for i in range(count)]
    for name in ("vit", "detr"):
        processor = SHARED[name]
        assert pixel_shape(processor(images, return_tensors="np")) == (
            count,
            3,
            processor.height,
            processor.width,
        )


@pytest.mark.parametrize("return_tensors", [None, "np", "pt"])
def test_return_tensors_as_the_wrapped_processor(return_tensors: str | None) -> None:
    images = [synthetic_image(80, 60, 0), synthetic_image(30, 70, 1)]
    ours = SHARED["detr"](images, return_tensors=return_tensors)
    theirs = processors()["detr"][0](images, return_tensors=return_tensors)
    assert set(ours) == set(theirs) == {"pixel_values", "pixel_mask"}
    assert type(ours["pixel_values"]) is type(theirs["pixel_values"])
    rows = ours["pixel_values"] if return_tensors is None else list(ours["pixel_values"])
    assert [tuple(np.shape(row)) for row in rows] == [(3, 32, 48)] * 2
    assert np.asarray(ours["pixel_mask"]).shape == (2, 32, 48) and np.asarray(ours["pixel_mask"]).all()


def test_tensors_batches_and_single_images() -> None:
    processor = SHARED["vit"]
    image = synthetic_image(50, 40)
    array = np.array(image)
    expected = processor(image, return_tensors="np")["pixel_values"]
    assert expected.shape == (1, 3, 32, 32)
    same = [
        processor(array, return_tensors="np"),  # HWC array
        processor(torch.from_numpy(array).permute(2, 0, 1), return_tensors="np"),  # CHW tensor
        processor(array.transpose(2, 0, 1), input_data_format="channels_first", return_tensors="np"),
        processor((image,), return_tensors="np"),
    ]
    for encoding in same:
        np.testing.assert_allclose(encoding["pixel_values"], expected, atol=1e-6)
    batch = processor(np.stack([array, array, array]), return_tensors="np")["pixel_values"]  # one 4-D array
    np.testing.assert_allclose(batch, np.repeat(expected, 3, axis=0), atol=1e-6)


def test_a_grey_model_gets_one_channel() -> None:
    grey = ONNXImageProcessor(
        ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5], image_std=[0.5]),
        batch_size=1,
        height=32,
        width=32,
        num_channels=1,
    )
    images = [
        synthetic_image(40, 30),
        Image.new("L", (5, 9)),
        np.zeros((20, 20, 4), np.uint8),
        np.ones((7, 7)),
    ]
    assert pixel_shape(grey(images, return_tensors="np")) == (4, 1, 32, 32)
    # An RGB image becomes PIL's own luma, so a PIL "L" image and its RGB original agree.
    rgb = synthetic_image(40, 30)
    np.testing.assert_allclose(
        grey(rgb, return_tensors="np")["pixel_values"],
        grey(rgb.convert("L"), return_tensors="np")["pixel_values"],
        atol=1e-6,
    )


# ---- outputs equal the wrapped processor's where it already gives the fixed shape ----


@pytest.mark.parametrize("name", ["vit", "convnext", "segformer"])
def test_fixed_size_processors_are_untouched(name: str) -> None:
    processor, _, _ = processors()[name]
    images = [synthetic_image(w, h, seed) for seed, (w, h) in enumerate([(640, 480), (33, 90), (32, 32), (17, 256)])]
    assert SHARED[name].fitting == {}
    np.testing.assert_array_equal(
        SHARED[name](images, return_tensors="np")["pixel_values"],
        processor(images, return_tensors="np")["pixel_values"],
    )


@pytest.mark.parametrize("name", ["detr", "yolos"])
def test_aspect_keeping_processors_are_untouched_at_the_fixed_aspect_ratio(name: str) -> None:
    processor, _, _ = processors()[name]
    images = [synthetic_image(w, h, seed) for seed, (w, h) in enumerate([(48, 32), (96, 64), (300, 200), (1500, 1000)])]
    assert SHARED[name].fitting == {"size": {"height": 32, "width": 48}}
    for image in images:  # one at a time, as the pipelines call it
        np.testing.assert_allclose(
            SHARED[name](image, return_tensors="np")["pixel_values"],
            processor(image, return_tensors="np")["pixel_values"],
            atol=1e-6,
        )


def test_the_fitting_is_chosen_by_trial() -> None:
    assert SHARED["convnext-48"].fitting == {"size": {"shortest_edge": 48}}
    assert SHARED["convnext-32x48"].fitting == {}  # nothing fits: the output is resized
    vit_at_64 = ONNXImageProcessor(ViTImageProcessor(size={"height": 32, "width": 32}), 1, 64, 48)
    assert vit_at_64.fitting == {"size": {"height": 64, "width": 48}}
    image = synthetic_image(200, 100)
    # The last resort is a bilinear resize of the normalized output: close to what resizing first gives.
    resized = SHARED["convnext-32x48"](image, return_tensors="np")["pixel_values"]
    assert resized.shape == (1, 3, 32, 48)
    assert abs(resized.mean() - processors()["convnext"][0](image, return_tensors="np")["pixel_values"].mean()) < 0.1


def test_a_caller_cannot_change_the_fixed_size() -> None:
    encoding = SHARED["vit"](
        synthetic_image(50, 40),
        size={"height": 64, "width": 64},
        do_resize=False,
        data_format="channels_last",
        return_tensors="np",
    )
    assert pixel_shape(encoding) == (1, 3, 32, 32)


# ---- everything else is the wrapped processor's ----


def test_behaves_as_the_wrapped_processor(tmp_path: Path) -> None:
    processor = wrapped("detr", batch_size=4)
    inner = processor.wrapped
    assert isinstance(processor, FixedShapeProcessor)
    assert processor.shapes == {"batch_size": 4, "num_channels": 3, "height": 32, "width": 48}
    assert (processor.batch_size, processor.height, processor.width, processor.num_channels) == (4, 32, 48, 3)
    assert processor.image_mean == inner.image_mean and processor.size == inner.size
    assert processor.post_process_object_detection.__func__ is type(inner).post_process_object_detection
    processor.do_normalize = False  # attributes go to the wrapped processor
    assert inner.do_normalize is False
    assert "DetrImageProcessor" in repr(processor) and "height=32" in repr(processor)
    saved = processor.save_pretrained(tmp_path)
    assert [Path(p).name for p in saved] == ["preprocessor_config.json"]
    loaded = AutoImageProcessor.from_pretrained(tmp_path, use_fast=False)
    assert type(loaded) is DetrImageProcessor
    assert loaded.to_dict() == inner.to_dict()
    assert json.loads((tmp_path / "preprocessor_config.json").read_text())["size"] == DETECTION


def test_copies_and_pickles() -> None:
    processor = wrapped("detr")
    processor.fitting  # noqa: B018 (chosen before copying)
    for clone in (copy.deepcopy(processor), pickle.loads(pickle.dumps(processor))):
        assert clone.shapes == processor.shapes and clone.fitting == processor.fitting
        assert pixel_shape(clone(synthetic_image(20, 90), return_tensors="np")) == (1, 3, 32, 48)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (None, "No images given"),
        ([], "empty list"),
        ("not an image", "Unsupported image type str"),
        (np.zeros((2, 2, 2, 2, 2)), "2 or 3 dims"),
        (np.zeros((20, 20, 20)), "Cannot tell the channel axis"),
    ],
    ids=["none", "empty", "str", "5d", "ambiguous"],
)
def test_bad_inputs_raise_one_line_user_errors(images: object, message: str) -> None:
    with pytest.raises(ModelExportError, match=message) as caught:
        SHARED["vit"](images)
    assert "\n" not in str(caught.value)


def test_shapes_must_be_positive_integers() -> None:
    with pytest.raises(ModelExportError, match="positive integer"):
        ONNXImageProcessor(ViTImageProcessor(), batch_size=1, height=0, width=32)
    assert ONNXImageProcessor(ViTImageProcessor(), np.int64(2), 32, 32).shapes["batch_size"] == 2


# ---- the hooks that need no export ----


def test_the_vision_modality_names_dims_and_wraps_only_image_processors(tiny_tokenizer_dir: Path) -> None:
    modality = VisionModality()
    assert modality.tasks == ("image-classification", "object-detection", "image-segmentation")
    assert modality.name_dims({"pixel_values": [4, 3, 32, 48]}) == {
        "batch_size": 4,
        "num_channels": 3,
        "height": 32,
        "width": 48,
    }
    assert modality.name_dims({"pixel_values": [None, 3, None, None]})["height"] is None
    assert vision.ort_model_class("image-classification") is None
    tokenizer = BertTokenizerFast.from_pretrained(tiny_tokenizer_dir)
    assert modality.wrap_processor(tokenizer, {"batch_size": 1, "height": 8, "width": 8}) is None
    wrapper = modality.wrap_processor(ViTImageProcessor(), {"batch_size": 2, "height": 8, "width": 16})
    assert isinstance(wrapper, ONNXImageProcessor) and wrapper.shapes["num_channels"] == 3


@pytest.mark.parametrize(
    ("preprocessor", "config", "expected"),
    [
        ({"size": {"height": 384, "width": 320}}, {}, (384, 320)),
        (
            {
                "size": {"shortest_edge": 256},
                "do_center_crop": True,
                "crop_size": {"height": 224, "width": 200},
            },
            {},
            (224, 200),
        ),
        ({"size": {"shortest_edge": 800, "longest_edge": 1333}}, {}, (800, 800)),
        ({"size": {"max_height": 640, "max_width": 480}}, {}, (640, 480)),
        ({"size": 300}, {}, (300, 300)),
        (None, {"image_size": [32, 48]}, (32, 48)),
        (None, {"image_size": 64, "num_channels": 1}, (64, 64)),
        (None, {}, (224, 224)),
    ],
)
def test_default_shapes_come_from_the_processor_then_the_config(
    tmp_path: Path, preprocessor: dict | None, config: dict, expected: tuple[int, int]
) -> None:
    if preprocessor is not None:
        (tmp_path / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    (tmp_path / "config.json").write_text(json.dumps(config))
    shapes = VisionModality().default_dims(tmp_path)
    assert (shapes["height"], shapes["width"]) == expected
    assert shapes["num_channels"] == config.get("num_channels", 3)


def test_sample_images_are_photos_of_different_sizes() -> None:
    samples = sample_images()
    assert set(samples) == {"small", "large"}
    for images in samples.values():
        assert len({image.size for image in images}) == len(images) == 4
        assert all(image.mode == "RGB" for image in images)
    assert VisionModality().sample_inputs({}).keys() == samples.keys()
    corpus = VisionModality().corpus()
    assert len(corpus) == 32 and len({image.size for image in corpus}) == 8
