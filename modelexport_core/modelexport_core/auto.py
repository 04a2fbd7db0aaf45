"""`ONNXAutoProcessor`: read a package's fixed shapes back and return the wrapper that makes inputs fit them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ModelExportError
from .fixed import FixedShapeProcessor
from .package import find_model_file
from .plugins import hook, missing_plugin
from .shapes import DetectedShapes, detect_shapes


def wrap(processor: Any, detected: DetectedShapes) -> FixedShapeProcessor:
    """Wrap a plain HF processor for the detected shapes through the modality's plugin."""
    if isinstance(processor, FixedShapeProcessor):
        return processor
    wrapper = hook().wrap_processor(modality=detected.modality, processor=processor, shapes=detected.shapes)
    if wrapper is None:
        raise missing_plugin(detected.modality)
    wrapper.shape_source = detected.source
    return wrapper


class ONNXAutoProcessor:
    """Factory for the fixed-shape processor wrapper that fits an ONNX model (like transformers' Auto classes)."""

    @classmethod
    def from_model(cls, onnx_model_path: str | Path, hf_model_path: str | Path | None = None) -> FixedShapeProcessor:
        """Detect the model's fixed shapes, load its HF processor (from `hf_model_path` or the package) and wrap it."""
        model_file = find_model_file(onnx_model_path)
        detected = detect_shapes(model_file)
        processor_dir = str(hf_model_path or model_file.parent)
        try:
            processor = hook().load_processor(modality=detected.modality, processor_dir=processor_dir)
        except OSError as err:
            raise ModelExportError(
                f"No processor files in {processor_dir}: pass hf_model_path= the original model directory"
            ) from err
        if processor is None:
            raise missing_plugin(detected.modality)
        return wrap(processor, detected)
