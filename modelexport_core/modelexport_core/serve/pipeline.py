"""`create_pipeline`: a standard transformers pipeline over a fixed-shape package, for inputs of any number and size."""

from __future__ import annotations

import logging
from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.plugins.modality import Modality
from modelexport_core.quiet import quieted
from modelexport_core.serve.auto import ONNXAutoProcessor, wrap
from modelexport_core.serve.routing import routed_processor
from modelexport_core.serve.served import serve_package
from modelexport_core.serve.sorting import sorted_by_length


def _pipeline_class(task: str, modality: Modality) -> type:
    """The modality's pipeline class for `task` (which may register a task transformers lacks), else the stock one."""
    from transformers.pipelines import check_task

    offered = modality.pipeline_class(task)
    if offered is not None:
        return offered
    try:
        _, task_defaults, _ = check_task(task)
    except KeyError as err:
        raise ModelExportError(f"Unknown pipeline task '{task}'") from err
    return task_defaults["impl"]


def create_pipeline(
    task: str,
    model: Any,
    data_processor: Any = None,
    *,
    session_options: Any = None,
    sort_by_length: bool = True,
    use_buckets: bool = True,
    trust_remote_code: bool = False,
    target: str = "cpu",
    share_sessions: bool = True,
    share_weights: bool = True,
    **kwargs: Any,
) -> Any:
    """A `transformers.Pipeline` for `task` over a fixed-shape package that takes any number of inputs of any size.

    `model` is a package directory, a path to its model.onnx, or an ORTModel. `data_processor` is an ONNX*
    wrapper, a plain HF tokenizer / processor (wrapped for the detected shapes), or None (loaded from the
    package). It is routed to the pipeline keyword that fits it (tokenizer, image_processor, ...).
    A package with shape buckets runs each batch on the smallest bucket that holds its longest input
    (unless `use_buckets=False`: every batch on model.onnx);
    `sort_by_length` runs a call's inputs shortest first, as the modality measures them (answers keep the
    caller's order), so batches pad little. `session_options` (onnxruntime.SessionOptions) go to every session.
    A package whose config or processor needs its own code is refused in one line unless `trust_remote_code`.
    `target` (e.g. "qnn-htp") builds every session on that execution target, CPU fallback disabled.
    Sessions are created on first use (model.onnx's at once) and shared with every pipeline of this process over
    the same files, task, target and `session_options` object, unless `share_sessions=False`. The graphs of a
    bucketed package share one copy of its weights (prepacking off; `session_options`' attributes are kept, its
    config entries are not), unless `share_weights=False`.
    """
    from transformers import pipeline

    served = serve_package(
        task, model, session_options, trust_remote_code, target, use_buckets, share_sessions, share_weights
    )
    modality = served.modality
    if data_processor is None:
        data_processor = ONNXAutoProcessor.from_model(served.model_file, trust_remote_code=trust_remote_code)
    data_processor = wrap(data_processor, served.detected)
    if served.bucket_lengths:
        data_processor = data_processor.for_buckets(served.bucket_lengths)
    pipeline_class = _pipeline_class(task, modality)
    routed = routed_processor(pipeline_class, data_processor)
    if sort_by_length:
        pipeline_class = sorted_by_length(pipeline_class, lambda items: modality.input_lengths(items, data_processor))
    with quieted("transformers.pipelines.base", level=logging.CRITICAL):  # 'model X is not supported' log
        return pipeline(
            task,
            model=served.adapter,
            framework="pt",
            pipeline_class=pipeline_class,
            trust_remote_code=trust_remote_code,
            **routed,
            **kwargs,
        )
