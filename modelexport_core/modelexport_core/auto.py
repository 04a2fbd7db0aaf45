"""`ONNXAutoProcessor`: read a package's fixed shapes back and return the wrapper that makes inputs fit them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ModelExportError
from .fixed import FixedShapeProcessor
from .package import find_model_file
from .plugins import hook, missing_plugin, modalities
from .shapes import DetectedShapes, detect_shapes


def wrap(processor: Any, detected: DetectedShapes) -> FixedShapeProcessor:
    """Wrap a plain HF processor for the detected shapes through the modality's plugin."""
    if isinstance(processor, FixedShapeProcessor):
        _check_fits(processor, detected)
        return processor
    wrapper = hook().wrap_processor(modality=detected.modality, processor=processor, shapes=detected.shapes)
    if wrapper is None:
        if detected.modality not in {m.name for m in modalities()}:
            raise missing_plugin(detected.modality)
        raise ModelExportError(
            f"A {type(processor).__name__} cannot preprocess the inputs of this {detected.modality} model: "
            "pass its tokenizer / processor, or None to load it from the package"
        )
    wrapper.shape_source = detected.source
    return wrapper


def _check_fits(processor: FixedShapeProcessor, detected: DetectedShapes) -> None:
    """A given wrapper must make the model's fixed per-sample shape (the batch is the adapter's business)."""
    if detected.source == "defaults":  # a dynamic model takes what the wrapper makes
        return
    made = {k: v for k, v in processor.shapes.items() if not k.endswith("batch_size")}
    wrong = {k: v for k, v in made.items() if detected.shapes.get(k, v) != v}
    if wrong:
        given = ", ".join(f"{k}={v}" for k, v in wrong.items())
        fixed = ", ".join(f"{k}={detected.shapes[k]}" for k in wrong)
        raise ModelExportError(
            f"The {type(processor).__name__} makes {given} but the model is fixed at {fixed}: "
            "pass a plain tokenizer / processor (wrapped for the model) or None"
        )


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
        except (OSError, ValueError) as err:  # ValueError: not even a config.json to go by
            raise ModelExportError(
                f"No processor files in {processor_dir}: pass hf_model_path= the original model directory"
            ) from err
        if processor is None:
            raise missing_plugin(detected.modality)
        return wrap(processor, detected)
