"""`modelexport benchmark`: the same inputs through PyTorch, Optimum, our pipeline and a raw session, side by side."""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelexport_core.errors import ModelExportError
from modelexport_core.package.axes import BatchAxes, batch_axes
from modelexport_core.package.layout import MODEL_FILE, package_task
from modelexport_core.package.shapes import detect_shapes
from modelexport_core.plugins.manager import get_modality
from modelexport_core.quiet import quieted
from modelexport_core.serve.auto import ONNXAutoProcessor
from modelexport_core.serve.models import ort_model_class

RUNNERS = ("pytorch", "optimum", "modelexport", "onnxruntime")
LABELS = {
    "pytorch": "(a) PyTorch pipeline",
    "optimum": "(b) Optimum, dynamic axes",
    "modelexport": "(c) create_pipeline",
    "onnxruntime": "(d) raw onnxruntime",
}


@dataclass
class BenchmarkRow:
    """Median seconds of one input set through every runner."""

    inputs: str
    count: int
    batch_size: int
    seconds: dict[str, float]
    preprocess_seconds: float

    def ratio(self, runner: str, baseline: str) -> float:
        return self.seconds[runner] / self.seconds[baseline]


def _median_seconds(run: Callable[[], Any], warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _session_options(threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return options


def _raw_session_runner(
    package_dir: Path, processor: Any, inputs: list[Any], threads: int, processor_kwargs: dict[str, Any]
) -> tuple[Callable, float]:
    """A runner that feeds pre-processed fixed-shape batches straight to an InferenceSession.

    Each input is cut into blocks of the fixed batch of its own batch axis (CLIP: images and candidate texts),
    the last block padded, and every combination of blocks is one run.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(package_dir / MODEL_FILE), _session_options(threads), providers=["CPUExecutionProvider"]
    )
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
    feeds = [feed for e in arrays for feed in _fixed_feeds(e, axes)]
    return (lambda: [session.run(None, feed) for feed in feeds]), preprocess_seconds


def _fixed_feeds(encoded: dict[str, np.ndarray], axes: BatchAxes) -> list[dict[str, np.ndarray]]:
    """Every combination of fixed-size blocks along each batch axis, the last block of each padded."""
    groups: dict[str, int] = {}
    for name, value in encoded.items():
        groups[axes.input_group(name)] = max(groups.get(axes.input_group(name), 0), value.shape[0])
    sizes = {group: axes.sizes.get(group, count) for group, count in groups.items()}
    feeds = []
    for starts in itertools.product(*(range(0, count, sizes[group]) for group, count in groups.items())):
        start = dict(zip(groups, starts))
        feed = {}
        for name, value in encoded.items():
            group = axes.input_group(name)
            feed[name] = _padded(value[start[group] : start[group] + sizes[group]], sizes[group])
        feeds.append(feed)
    return feeds


def _padded(array: np.ndarray, batch: int) -> np.ndarray:
    missing = batch - array.shape[0]
    return np.concatenate([array, np.repeat(array[-1:], missing, axis=0)]) if missing > 0 else array


def _optimum_dynamic_export(source: Path, task: str, directory: Path) -> Path:
    from optimum.exporters.onnx import main_export

    from modelexport_core.exporter.tasks import export_task_for

    main_export(str(source), directory, task=export_task_for(task), do_validation=False, library_name="transformers")
    return directory


def run_benchmark(
    package_dir: str | Path,
    source: str | Path,
    task: str | None = None,
    count: int | None = None,
    threads: int = 1,
    warmup: int = 2,
    repeats: int = 5,
) -> list[BenchmarkRow]:
    """Time every runner on each of the modality's sample input sets; `count` inputs each (default 4 batches)."""
    import torch
    from optimum.pipelines import pipeline as optimum_pipeline
    from transformers import pipeline
    from transformers.pipelines import check_task

    from modelexport_core.serve.pipeline import create_pipeline
    from modelexport_core.serve.routing import routed_processor

    package_dir, source = Path(package_dir), Path(source)
    if not (source / "config.json").is_file():
        raise ModelExportError(f"--source must be the original model directory (no config.json in {source})")
    task = task or package_task(package_dir)
    detected = detect_shapes(package_dir / MODEL_FILE)
    batch = detected.shapes["batch_size"]
    modality = get_modality(detected.modality)
    samples = modality.sample_inputs(detected.shapes)
    if not samples:
        raise ModelExportError(f"No installed plugin provides benchmark inputs for {detected.modality} models")
    extra = modality.benchmark_kwargs(task)
    pipeline_kwargs, processor_kwargs = extra.get("pipeline", {}), extra.get("processor", {})
    torch.set_num_threads(threads)
    rows = []
    with quieted("transformers", "optimum", stderr=True), tempfile.TemporaryDirectory() as dynamic_dir:
        processor = ONNXAutoProcessor.from_model(package_dir / MODEL_FILE)
        model = ort_model_class(task).from_pretrained(package_dir, session_options=_session_options(threads))
        dynamic = _optimum_dynamic_export(source, task, Path(dynamic_dir))
        dynamic_model = ort_model_class(task).from_pretrained(dynamic, session_options=_session_options(threads))
        # The source's own (unwrapped) processor, under the keyword its kind goes to (tokenizer, image_processor, ...).
        loaded = modality.load_processor(str(source))
        source_processor = routed_processor(check_task(task)[1]["impl"], loaded)
        pipes = {
            "pytorch": pipeline(task, model=str(source), framework="pt"),
            "optimum": optimum_pipeline(task, model=dynamic_model, accelerator="ort", **source_processor),
            "modelexport": create_pipeline(task, model, data_processor=processor),
        }
        for name, sample in samples.items():
            inputs = (sample * (1 + (count or 4 * batch) // len(sample)))[: count or 4 * batch]
            raw_run, preprocess_seconds = _raw_session_runner(package_dir, processor, inputs, threads, processor_kwargs)
            seconds = {
                runner: _median_seconds(lambda p=pipe: p(inputs, batch_size=batch, **pipeline_kwargs), warmup, repeats)
                for runner, pipe in pipes.items()
            }
            seconds["onnxruntime"] = _median_seconds(raw_run, warmup, repeats)
            rows.append(BenchmarkRow(name, len(inputs), batch, seconds, preprocess_seconds))
    return rows


def benchmark_json(rows: list[BenchmarkRow]) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, with every runner's ratio to PyTorch and to the raw session."""
    return [
        {
            **asdict(row),
            "ratio_to_pytorch": {r: round(row.ratio(r, "pytorch"), 3) for r in RUNNERS},
            "ratio_to_onnxruntime": {r: round(row.ratio(r, "onnxruntime"), 3) for r in RUNNERS},
        }
        for row in rows
    ]


def print_benchmark(rows: list[BenchmarkRow], console: Any) -> None:
    """One table per input set: median ms of each runner, and its ratio to (a) and (d)."""
    from rich.table import Table

    for row in rows:
        table = Table(title=f"{row.inputs}: {row.count} inputs, fixed batch {row.batch_size}")
        table.add_column("runner", no_wrap=True)
        for header in ("median ms", "x (a)", "x (d)"):
            table.add_column(header, justify="right")
        for runner in RUNNERS:
            table.add_row(
                LABELS[runner],
                f"{row.seconds[runner] * 1000:.1f}",
                f"{row.ratio(runner, 'pytorch'):.2f}",
                f"{row.ratio(runner, 'onnxruntime'):.2f}",
            )
        console.print(table)
        console.print(
            f"preprocessing alone (our processor, {row.count} inputs): {row.preprocess_seconds * 1000:.1f} ms"
        )
