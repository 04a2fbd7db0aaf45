"""A package's model as it is served: its ORTModel on a target, over its shape buckets, behind the fixed-batch
adapter (what create_pipeline and AutoModelForONNX both run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelexport_core.package.axes import batch_axes
from modelexport_core.package.layout import DEFAULT_BATCH_SIZE
from modelexport_core.package.shapes import DetectedShapes, detect_shapes
from modelexport_core.plugins.manager import get_modality
from modelexport_core.plugins.modality import Modality
from modelexport_core.serve.adapter import FixedBatchModel
from modelexport_core.serve.buckets import BucketedModel, serve_buckets
from modelexport_core.serve.models import load_ort_model
from modelexport_core.targets.registry import get_target


@dataclass(frozen=True)
class ServedModel:
    """The adapter to call, the package's model file, its detected shapes and modality, and the bucket lengths
    (empty when the package has one size)."""

    adapter: FixedBatchModel
    model_file: Path
    detected: DetectedShapes
    modality: Modality
    bucket_lengths: list[int]


def serve_package(
    task: str,
    model: Any,
    session_options: Any = None,
    trust_remote_code: bool = False,
    target: str = "cpu",
    use_buckets: bool = True,
) -> ServedModel:
    """Load a package (directory, model.onnx or ORTModel) for `task` on `target`, every session alike."""
    execution_target = get_target(target)
    ort_model, model_file = load_ort_model(task, model, session_options, trust_remote_code, execution_target)
    detected = detect_shapes(model_file)
    modality = get_modality(detected.modality)
    served = serve_buckets(
        ort_model,
        model_file,
        detected.buckets if use_buckets else {},
        modality,
        lambda name: load_ort_model(
            task, model_file.parent / name, session_options, trust_remote_code, execution_target
        )[0],
    )
    batch_size = detected.shapes.get("batch_size", DEFAULT_BATCH_SIZE)
    adapter = FixedBatchModel(served, batch_size, batch_axes(model_file, detected.input_shapes, batch_size))
    lengths = list(served.lengths) if isinstance(served, BucketedModel) else []
    return ServedModel(adapter, model_file, detected, modality, lengths)
