"""`VisionModality`: what the vision plugin registers; its methods carry everything image-specific."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelexport_core import Modality, ModelExportError

DEFAULT_IMAGE_SIZE = 224
DEFAULT_NUM_CHANNELS = 3
PREPROCESSOR_FILE = "preprocessor_config.json"


class VisionModality(Modality):
    """Images through an image processor: `pixel_values` [batch, num_channels, height, width]."""

    name = "vision"
    tasks = ("image-classification", "object-detection", "image-segmentation")
    input_names = ("pixel_values",)
    dim_names = ("batch_size", "num_channels", "height", "width")
    input_column = "image"

    def name_dims(self, input_shapes: Mapping[str, Sequence[int | None]]) -> dict[str, int | None]:
        batch_size, num_channels, height, width = [*input_shapes.get("pixel_values", ()), None, None, None, None][:4]
        return {"batch_size": batch_size, "num_channels": num_channels, "height": height, "width": width}

    def default_dims(self, package_dir: Path) -> dict[str, int]:
        """The size the package's image processor produces, else the config's image_size, else 224 x 224."""
        preprocessor = _read_json(Path(package_dir) / PREPROCESSOR_FILE)
        config = _read_json(Path(package_dir) / "config.json")
        height, width = _processor_output_size(preprocessor) or _config_image_size(config) or (DEFAULT_IMAGE_SIZE,) * 2
        num_channels = config.get("num_channels")
        return {
            "height": height,
            "width": width,
            "num_channels": num_channels if isinstance(num_channels, int) else DEFAULT_NUM_CHANNELS,
        }

    def save_preprocessor(self, source: str, out_dir: Path, hub_kwargs: Mapping[str, Any]) -> None:
        from transformers import AutoImageProcessor

        try:
            processor = AutoImageProcessor.from_pretrained(source, use_fast=False, **hub_kwargs)
        except (OSError, ValueError):
            warnings.warn(
                f"{source} has no {PREPROCESSOR_FILE}: the package has none, so pass an image processor "
                "(or hf_model_path=) to create_pipeline / ONNXAutoProcessor",
                stacklevel=2,
            )
            return
        processor.save_pretrained(out_dir)

    def load_processor(self, directory: str, trust_remote_code: bool = False) -> Any:
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(directory, use_fast=False, trust_remote_code=trust_remote_code)

    def wrap_processor(self, processor: Any, dims: Mapping[str, int]) -> Any | None:
        from transformers import BaseImageProcessor

        from modelexport_vision.processor import ONNXImageProcessor

        if not isinstance(processor, BaseImageProcessor):
            return None
        return ONNXImageProcessor(
            processor,
            batch_size=dims["batch_size"],
            height=dims["height"],
            width=dims["width"],
            num_channels=dims.get("num_channels") or DEFAULT_NUM_CHANNELS,
        )

    def read_input(self, value: str) -> Any:
        """The image file at `value`, as a PIL image."""
        from transformers.image_utils import load_image

        if not Path(value).is_file():
            raise ModelExportError(f"Image file not found: {value}")
        return load_image(value)

    def sample_inputs(self, dims: Mapping[str, int]) -> dict[str, list[Any]]:
        from modelexport_vision.samples import sample_images

        return sample_images()

    def corpus(self) -> list[Any]:
        from modelexport_vision.samples import corpus_images

        return corpus_images()


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
