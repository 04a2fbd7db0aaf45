"""A package's model as it is served: its ORTModel on a target, over its shape buckets, behind the fixed-batch
adapter (what create_pipeline and AutoModelForONNX both run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelexport_core.package.axes import batch_axes
from modelexport_core.package.layout import DEFAULT_BATCH_SIZE, MODEL_FILE
from modelexport_core.package.shapes import DetectedShapes, detect_shapes
from modelexport_core.plugins.manager import get_modality
from modelexport_core.plugins.modality import Modality
from modelexport_core.serve.adapter import BatchBucketedModel, FixedBatchModel
from modelexport_core.serve.buckets import BucketedModel, serve_buckets
from modelexport_core.serve.models import load_ort_model, model_file_of
from modelexport_core.targets.registry import get_target


@dataclass(frozen=True)
class ServedModel:
    """The adapter to call, the package's model file, its detected shapes and modality, and the bucket lengths
    (empty when the package has one size)."""

    adapter: FixedBatchModel | BatchBucketedModel
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
    share_sessions: bool = True,
    share_weights: bool = True,
) -> ServedModel:
    """Load a package (directory, model.onnx or ORTModel) for `task` on `target`, every session alike (sessions
    this process already loaded with the same options shared, unless not `share_sessions`; the graphs of a
    bucketed package sharing one copy of the weights, unless not `share_weights`: `load_ort_model`)."""
    execution_target = get_target(target)
    detected = detect_shapes(model_file_of(model))
    bucketed = use_buckets and len(detected.buckets) > 1
    options = (session_options, trust_remote_code, execution_target, share_sessions, share_weights and bucketed)
    ort_model, model_file = load_ort_model(task, model, *options)
    modality = get_modality(detected.modality)

    def load(name: str) -> Any:
        return load_ort_model(task, model_file.parent / name, *options)[0]

    largest = detected.shapes.get("batch_size", DEFAULT_BATCH_SIZE)
    by_batch = _by_batch(detected.buckets, largest) if use_buckets and model_file.name == MODEL_FILE else {}

    def fixed_batch(batch: int, model: Any, file: Path) -> FixedBatchModel:
        shapes = detected.input_shapes
        if batch != largest:  # batch buckets: models with one batch axis, axis 0 of every input
            shapes = {name: [batch, *shape[1:]] for name, shape in shapes.items()}
        served = serve_buckets(model, file, by_batch.get(batch, {}), modality, load)
        return FixedBatchModel(served, batch, batch_axes(model_file, shapes, batch))

    def batch_loader(batch: int) -> Callable[[], FixedBatchModel]:
        file = _largest_file(by_batch[batch], modality)
        return lambda: fixed_batch(batch, load(file), model_file.parent / file)

    adapter: Any = fixed_batch(largest, ort_model, model_file)
    if len(by_batch) > 1:
        adapter = BatchBucketedModel(adapter, {batch: batch_loader(batch) for batch in by_batch if batch != largest})
    main = adapter.model if isinstance(adapter, FixedBatchModel) else adapter.largest.model
    lengths = list(main.lengths) if isinstance(main, BucketedModel) else []
    return ServedModel(adapter, model_file, detected, modality, lengths)


def _by_batch(buckets: dict[str, dict[str, int]], largest: int) -> dict[int, dict[str, dict[str, int]]]:
    """The package's bucket graphs grouped by their batch size (file -> named dims)."""
    grouped: dict[int, dict[str, dict[str, int]]] = {}
    for file, dims in buckets.items():
        grouped.setdefault(dims.get("batch_size", largest), {})[file] = dims
    return grouped


def _largest_file(files: dict[str, dict[str, int]], modality: Modality) -> str:
    """The graph of a batch size with the largest length (the bucket its calls are cut from)."""
    return max(files, key=lambda file: files[file].get(modality.length_dim or "", 0))
