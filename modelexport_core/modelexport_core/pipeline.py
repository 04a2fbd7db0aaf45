"""`create_pipeline`: a standard transformers pipeline over a fixed-shape package, for inputs of any number and size."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .adapter import FixedBatchModel
from .auto import ONNXAutoProcessor, wrap
from .batching import batch_axes
from .buckets import BucketedModel, serve_buckets
from .errors import ModelExportError
from .package import find_model_file
from .plugins import hook
from .quiet import quieted
from .shapes import DetectedShapes, detect_shapes
from .sorting import sorted_by_length
from .validate import ort_model_class


def _load_ort_model(task: str, model: Any, session_options: Any = None) -> tuple[Any, Path]:
    """An ORTModel and its model file, from a package dir, a path to model.onnx, or an ORTModel."""
    from optimum.onnxruntime import ORTModel

    if isinstance(model, ORTModel):
        return model, Path(model.path)
    model_file = find_model_file(model)
    model_class = ort_model_class(task)
    return model_class.from_pretrained(
        model_file.parent, file_name=model_file.name, session_options=session_options
    ), model_file


def _pipeline_class(task: str, modality: str) -> type:
    from transformers.pipelines import check_task

    try:
        _, task_defaults, _ = check_task(task)
    except KeyError as err:
        raise ModelExportError(f"Unknown pipeline task '{task}'") from err
    return hook().pipeline_class(task=task, modality=modality) or task_defaults["impl"]


def routed_processor(pipeline_class: type, processor: Any) -> dict[str, Any]:
    """The `transformers.pipeline` keyword a processor belongs to for `pipeline_class`, e.g. {"tokenizer": ...}."""
    routed = hook().route_processor(pipeline_class=pipeline_class, processor=processor)
    if routed is None:
        raise ModelExportError(f"Cannot tell which pipeline argument a {type(processor).__name__} is for")
    return routed


def create_pipeline(
    task: str,
    model: Any,
    data_processor: Any = None,
    *,
    session_options: Any = None,
    sort_by_length: bool = True,
    use_buckets: bool = True,
    **kwargs: Any,
) -> Any:
    """A `transformers.Pipeline` for `task` over a fixed-shape package that takes any number of inputs of any size.

    `model` is a package directory, a path to its model.onnx, or an ORTModel. `data_processor` is an ONNX*
    wrapper, a plain HF tokenizer / processor (wrapped for the detected shapes), or None (loaded from the
    package). It is routed to the pipeline keyword that fits it (tokenizer, image_processor, ...).
    A package with shape buckets runs each batch on the smallest bucket that holds its longest input
    (unless `use_buckets=False`: every batch on model.onnx);
    `sort_by_length` runs a call's texts shortest first (answers keep the caller's order) so batches pad
    little. `session_options` (onnxruntime.SessionOptions) go to every session.
    """
    from transformers import pipeline

    ort_model, model_file = _load_ort_model(task, model, session_options)
    detected: DetectedShapes = detect_shapes(model_file)
    if data_processor is None:
        data_processor = ONNXAutoProcessor.from_model(model_file)
    data_processor = wrap(data_processor, detected)
    served = serve_buckets(
        ort_model,
        model_file,
        detected.buckets if use_buckets else {},
        lambda name: _load_ort_model(task, model_file.parent / name, session_options)[0],
    )
    if isinstance(served, BucketedModel):
        data_processor = data_processor.for_buckets(served.lengths)
    pipeline_class = _pipeline_class(task, detected.modality)
    routed = routed_processor(pipeline_class, data_processor)
    batch_size = detected.shapes.get("batch_size", 1)
    adapter = FixedBatchModel(served, batch_size, batch_axes(model_file, detected.input_shapes, batch_size))
    if sort_by_length:
        pipeline_class = sorted_by_length(pipeline_class)
    with quieted("transformers.pipelines.base", level=logging.CRITICAL):  # 'model X is not supported' log
        return pipeline(task, model=adapter, framework="pt", pipeline_class=pipeline_class, **routed, **kwargs)
