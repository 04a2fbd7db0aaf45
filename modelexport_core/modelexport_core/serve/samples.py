"""Inputs of a package's exact fixed shapes: from real texts / images through its processor, else synthetic."""

from __future__ import annotations

from itertools import cycle, islice
from pathlib import Path
from typing import Any

import numpy as np

from modelexport_core.errors import ModelExportError
from modelexport_core.package.layout import MODEL_FILE, io_signature, load_graph
from modelexport_core.package.validate import fixed_shape_inputs
from modelexport_core.serve.auto import ONNXAutoProcessor


def package_inputs(package: Path, items: list[Any] | None = None) -> dict[str, np.ndarray]:
    """The model's inputs for `items` (texts, or image paths) through the package's processor.

    The items fill the fixed batch (repeated when fewer, the first ones when more). Without items: ones for
    integer inputs, noise for float ones (`fixed_shape_inputs`).
    """
    if not items:
        return fixed_shape_inputs(package)
    processor = ONNXAutoProcessor.from_model(package)
    batch = list(islice(cycle(_loaded(item) for item in items), processor.batch_size))
    encoded = processor(batch, return_tensors="np")
    inputs = {}
    for spec in io_signature(load_graph(package / MODEL_FILE))["inputs"]:
        if spec["name"] not in encoded:
            raise ModelExportError(
                f"The package's processor does not make its input {spec['name']}: "
                "compare without --text / --image to use synthetic inputs"
            )
        inputs[spec["name"]] = np.asarray(encoded[spec["name"]]).astype(spec["dtype"])
    return inputs


def _loaded(item: Any) -> Any:
    """An image file as a PIL image; anything else (a text) as it is."""
    if isinstance(item, Path):
        from transformers.image_utils import load_image

        if not item.is_file():
            raise ModelExportError(f"Image file not found: {item}")
        return load_image(str(item))
    return item
