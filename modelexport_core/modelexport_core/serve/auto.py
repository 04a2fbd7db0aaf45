"""`ONNXAutoProcessor`: read a package's fixed shapes back and return the wrapper that makes inputs fit them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelexport_core.errors import ModelExportError, remote_code_refused
from modelexport_core.package.layout import find_model_file
from modelexport_core.package.shapes import DetectedShapes, detect_shapes
from modelexport_core.plugins.manager import get_modality
from modelexport_core.serve.fixed import FixedShapeProcessor


def wrap(processor: Any, detected: DetectedShapes) -> FixedShapeProcessor:
    """Wrap a plain HF processor for the detected shapes through the modality's plugin."""
    if isinstance(processor, FixedShapeProcessor):
        _check_fits(processor, detected)
        return processor
    wrapper = get_modality(detected.modality).wrap_processor(processor, detected.shapes)
    if wrapper is None:
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
    def from_model(
        cls, onnx_model_path: str | Path, hf_model_path: str | Path | None = None, trust_remote_code: bool = False
    ) -> FixedShapeProcessor:
        """Detect the model's fixed shapes, load its HF processor (from `hf_model_path` or the package) and wrap it.

        A processor that needs its own code (an `auto_map`) is refused in one line unless `trust_remote_code`.
        """
        model_file = find_model_file(onnx_model_path)
        detected = detect_shapes(model_file)
        processor_dir = str(hf_model_path or model_file.parent)
        modality = get_modality(detected.modality)
        try:
            with remote_code_refused(f"The processor in {processor_dir}"):
                processor = modality.load_processor(processor_dir, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as err:  # ValueError: not even a config.json to go by
            raise ModelExportError(
                f"No processor files in {processor_dir}: pass hf_model_path= the original model directory"
            ) from err
        return wrap(processor, detected)
