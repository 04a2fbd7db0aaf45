"""What every benchmark runs with: timing, the baselines (PyTorch, Optimum's dynamic-axes export), the raw
onnxruntime runners."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelexport_core.errors import ModelExportError
from modelexport_core.exporter.tasks import export_task_for
from modelexport_core.package.axes import batch_axes
from modelexport_core.package.layout import CONFIG_FILE, MODEL_FILE
from modelexport_core.package.ort_model import ort_model_class
from modelexport_core.package.shapes import detect_shapes
from modelexport_core.plugins.modality import Modality
from modelexport_core.serve.routing import routed_processor
from modelexport_core.targets.cpu import CPU
from modelexport_core.targets.registry import session_options, target_session
from modelexport_core.targets.target import ExecutionTarget


def median_seconds(run: Callable[[], Any], warmup: int, repeats: int) -> float:
    """The median wall time of `repeats` runs after `warmup` untimed ones."""
    return interleaved_medians({"run": run}, warmup, repeats)["run"]


def interleaved_medians(runs: dict[str, Callable[[], Any]], warmup: int, repeats: int) -> dict[str, float]:
    """Each run's median wall time over `repeats` rounds after `warmup` untimed ones, the runs taking turns in
    every round: a slow spell of a shared machine falls on all of them alike rather than on one."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_number in range(warmup + repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if round_number >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def raw_session_runner(
    package_dir: Path,
    processor: Any,
    inputs: list[Any],
    threads: int,
    processor_kwargs: dict[str, Any],
    target: ExecutionTarget = CPU,
) -> tuple[Callable, float]:
    """A runner that feeds pre-processed fixed-shape batches straight to an InferenceSession on `target`.

    Each input is cut into blocks of the fixed batch of its own batch axis (CLIP: images and candidate texts),
    the last block padded, and every combination of blocks is one run.
    """
    session = target_session(str(package_dir / MODEL_FILE), target, threads=threads)
    names = {i.name for i in session.get_inputs()}
    batch = processor.batch_size
    detected = detect_shapes(package_dir / MODEL_FILE)
    axes = batch_axes(package_dir / MODEL_FILE, detected.input_shapes, batch)
    start = time.perf_counter()
    encoded = [
        processor(inputs[i : i + batch], return_tensors="np", **processor_kwargs) for i in range(0, len(inputs), batch)
    ]
    preprocess_seconds = time.perf_counter() - start
    arrays = [{k: np.asarray(v) for k, v in e.items() if k in names} for e in encoded]
    feeds = [block for feed in arrays for _, block in axes.blocks(feed, axes.counts(feed))]
    return (lambda: [session.run(None, feed) for feed in feeds]), preprocess_seconds


def raw_dynamic_runner(
    model: str | bytes, processor: Any, ordered: list[Any], batch: int, max_length: int | None, threads: int
) -> Callable[[], Any]:
    """Batches of the length-sorted inputs, each padded to its longest by the plain processor, straight to a
    dynamic-axes session."""
    session = target_session(model, CPU, threads=threads)
    names = {i.name for i in session.get_inputs()}
    encoded = [
        processor(ordered[i : i + batch], padding=True, truncation=True, max_length=max_length, return_tensors="np")
        for i in range(0, len(ordered), batch)
    ]
    feeds = [{k: v for k, v in e.items() if k in names} for e in encoded]
    return lambda: [session.run(None, feed) for feed in feeds]


def optimum_dynamic_export(source: Path, task: str, directory: Path, modality: Modality) -> Path:
    """Optimum's own ONNX export of `source` with dynamic axes, into `directory`, with the preprocessor files a
    package of the modality gets (a sentence-transformers model's pooling): the baseline runners load it."""
    from optimum.exporters.onnx import main_export

    main_export(
        str(source),
        directory,
        task=export_task_for(task),
        do_validation=False,
        library_name="transformers",
        trust_remote_code=False,
    )
    modality.save_preprocessor(str(source), directory, {})
    return directory


def check_source(source: Path) -> None:
    """A user error unless `source` is the original model directory the baselines load."""
    if not (source / CONFIG_FILE).is_file():
        raise ModelExportError(f"--source must be the original model directory (no {CONFIG_FILE} in {source})")


def plugin_task(task: str, modality: Modality) -> dict[str, Any]:
    """pipeline() keywords for a task transformers lacks and a plugin adds (sentence-embeddings): its pipeline
    class, which the plugin registers with transformers as it hands it over; {} for transformers' own tasks."""
    from transformers.pipelines import SUPPORTED_TASKS, TASK_ALIASES

    return {} if task in SUPPORTED_TASKS or task in TASK_ALIASES else {"pipeline_class": modality.pipeline_class(task)}


def pytorch_baseline(task: str, source: Path, plugin: dict[str, Any]) -> Any:
    """The transformers pipeline of the original PyTorch model (`plugin`: from plugin_task)."""
    from transformers import pipeline

    return pipeline(task, model=str(source), framework="pt", trust_remote_code=False, **plugin)


def optimum_baseline(task: str, dynamic_dir: Path, processor: Any, threads: int, plugin: dict[str, Any]) -> Any:
    """Optimum's pipeline over its dynamic-axes export, with the source's own (unwrapped) processor under the
    keyword its kind goes to (tokenizer, image_processor, ...); a plugin's task: its pipeline class over
    Optimum's ORTModel."""
    from optimum.pipelines import pipeline as optimum_pipeline
    from transformers import pipeline
    from transformers.pipelines import check_task

    model = ort_model_class(task).from_pretrained(
        dynamic_dir, trust_remote_code=False, session_options=session_options(threads)
    )
    routed = routed_processor(plugin.get("pipeline_class") or check_task(task)[1]["impl"], processor)
    if plugin:
        return pipeline(task, model=model, **routed, **plugin)
    return optimum_pipeline(task, model=model, accelerator="ort", **routed)
