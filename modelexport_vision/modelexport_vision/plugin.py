"""Vision hooks: modality declaration, shape naming and defaults, image processor copying, loading and
wrapping, the object-detection ORTModel, benchmark images."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from modelexport_core import Modality, hookimpl

VISION = Modality(
    name="vision",
    tasks=("image-classification", "object-detection", "image-segmentation"),
    input_names=("pixel_values",),
)
DEFAULT_IMAGE_SIZE = 224
DEFAULT_NUM_CHANNELS = 3
PREPROCESSOR_FILE = "preprocessor_config.json"


@hookimpl
def register_modalities() -> list[Modality]:
    return [VISION]


@hookimpl
def detect_shapes(modality: str, input_shapes: dict[str, list[int | None]]) -> dict[str, int | None] | None:
    if modality != VISION.name or "pixel_values" not in input_shapes:
        return None
    batch_size, num_channels, height, width = (list(input_shapes["pixel_values"]) + [None] * 4)[:4]
    return {"batch_size": batch_size, "num_channels": num_channels, "height": height, "width": width}


@hookimpl
def default_shapes(modality: str, package_dir: Path) -> dict[str, int] | None:
    if modality != VISION.name:
        return None
    preprocessor = _read_json(Path(package_dir) / PREPROCESSOR_FILE)
    config = _read_json(Path(package_dir) / "config.json")
    height, width = _processor_output_size(preprocessor) or _config_image_size(config) or (DEFAULT_IMAGE_SIZE,) * 2
    num_channels = config.get("num_channels")
    return {
        "height": height,
        "width": width,
        "num_channels": num_channels if isinstance(num_channels, int) else DEFAULT_NUM_CHANNELS,
    }


@hookimpl
def load_processor(modality: str, processor_dir: str) -> Any | None:
    if modality != VISION.name:
        return None
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(processor_dir, use_fast=False)


@hookimpl
def copy_configs(modality: str, source: str, out_dir: Path, hub_kwargs: dict[str, Any]) -> list[str] | None:
    if modality != VISION.name:
        return None
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(source, use_fast=False, **hub_kwargs)
    except (OSError, ValueError):
        warnings.warn(
            f"{source} has no {PREPROCESSOR_FILE}: the package has none, so pass an image processor "
            "(or hf_model_path=) to create_pipeline / ONNXAutoProcessor",
            stacklevel=2,
        )
        return []
    return [Path(name).name for name in processor.save_pretrained(out_dir)]


@hookimpl
def wrap_processor(modality: str, processor: Any, shapes: dict[str, int]) -> Any | None:
    if modality != VISION.name:
        return None
    from transformers import BaseImageProcessor

    from .processor import ONNXImageProcessor

    if not isinstance(processor, BaseImageProcessor):
        return None
    return ONNXImageProcessor(
        processor,
        batch_size=shapes["batch_size"],
        height=shapes["height"],
        width=shapes["width"],
        num_channels=shapes.get("num_channels") or DEFAULT_NUM_CHANNELS,
    )


@hookimpl
def ort_model_class(task: str) -> type | None:
    if task != "object-detection":
        return None
    from .modeling import ORTModelForObjectDetection

    return ORTModelForObjectDetection


@hookimpl
def sample_inputs(modality: str, sequence_length: int) -> dict[str, list[Any]] | None:
    if modality != VISION.name:
        return None
    from .samples import sample_images

    return sample_images()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _square_or_pair(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value[0], value[1]
    return None


def _processor_output_size(preprocessor: dict[str, Any]) -> tuple[int, int] | None:
    """The (height, width) a processor config produces: its crop, its exact size, or a square of its edge.

    Processors that keep the aspect ratio (e.g. DETR's shortest_edge 800 / longest_edge 1333) give a square of
    their shortest edge; export with --height/--width for another aspect ratio.
    """
    crop = preprocessor.get("crop_size")
    if preprocessor.get("do_center_crop") and isinstance(crop, dict) and {"height", "width"} <= set(crop):
        return crop["height"], crop["width"]
    size = preprocessor.get("size")
    if not isinstance(size, dict):
        return _square_or_pair(size)
    for keys in (("height", "width"), ("max_height", "max_width")):
        if set(keys) <= set(size):
            return size[keys[0]], size[keys[1]]
    edge = size.get("shortest_edge") or size.get("longest_edge")
    return (edge, edge) if isinstance(edge, int) else None


def _config_image_size(config: dict[str, Any]) -> tuple[int, int] | None:
    return _square_or_pair(config.get("image_size"))
