"""Inputs of a package's exact fixed shapes: from real inputs through its processor, else synthetic."""

from __future__ import annotations

from itertools import cycle, islice
from pathlib import Path

import numpy as np

from modelexport_core.errors import ModelExportError
from modelexport_core.package.layout import MODEL_FILE, io_signature, load_graph
from modelexport_core.package.shapes import detect_shapes
from modelexport_core.package.validate import fixed_shape_inputs
from modelexport_core.plugins.manager import get_modality
from modelexport_core.serve.auto import ONNXAutoProcessor


def package_inputs(package: Path, items: list[str] | None = None) -> dict[str, np.ndarray]:
    """The model's inputs for `items` (command-line values: texts, file paths) through the package's processor;
    the package's modality reads each value (`Modality.read_input`).

    The items fill the fixed batch (repeated when fewer, the first ones when more). Without items: ones for
    integer inputs, noise for float ones (`fixed_shape_inputs`).
    """
    if not items:
        return fixed_shape_inputs(package)
    processor = ONNXAutoProcessor.from_model(package)
    modality = get_modality(detect_shapes(package / MODEL_FILE).modality)
    batch = list(islice(cycle(modality.read_input(str(item)) for item in items), processor.batch_size))
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
