"""`modelexport benchmark`: the same inputs through PyTorch, Optimum, our pipeline and a raw session, side by side."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from modelexport_core.bench.runners import (
    check_source,
    median_seconds,
    optimum_baseline,
    optimum_dynamic_export,
    plugin_task,
    pytorch_baseline,
    raw_session_runner,
)
from modelexport_core.errors import ModelExportError
from modelexport_core.package.layout import MODEL_FILE, package_task
from modelexport_core.package.shapes import detect_shapes
from modelexport_core.plugins.manager import get_modality
from modelexport_core.plugins.modality import Modality
from modelexport_core.quiet import quieted
from modelexport_core.serve.auto import ONNXAutoProcessor
from modelexport_core.serve.models import load_ort_model
from modelexport_core.serve.pipeline import create_pipeline
from modelexport_core.targets.registry import get_target, session_options
from modelexport_core.targets.target import ExecutionTarget

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


def run_benchmark(
    package_dir: str | Path,
    source: str | Path,
    task: str | None = None,
    count: int | None = None,
    threads: int = 1,
    warmup: int = 2,
    repeats: int = 5,
    target: str = "cpu",
) -> list[BenchmarkRow]:
    """Time every runner on each of the modality's sample input sets; `count` inputs each (default 4 batches).
    Our pipeline (c) and the raw session (d) run on `target`; PyTorch and Optimum on the CPU."""
    import torch

    package_dir, source, execution_target = Path(package_dir), Path(source), get_target(target)
    check_source(source)
    task = task or package_task(package_dir)
    detected = detect_shapes(package_dir / MODEL_FILE)
    batch = detected.shapes["batch_size"]
    count = count or 4 * batch
    modality = get_modality(detected.modality)
    samples = modality.sample_inputs(detected.shapes)
    if not samples:
        raise ModelExportError(f"No installed plugin provides benchmark inputs for {detected.modality} models")
    extra = modality.benchmark_kwargs(task)
    torch.set_num_threads(threads)
    with quieted("transformers", "optimum", stderr=True), tempfile.TemporaryDirectory() as dynamic_dir:
        processor = ONNXAutoProcessor.from_model(package_dir / MODEL_FILE)
        pipes = _pipelines(
            task, package_dir, source, Path(dynamic_dir), modality, processor, (threads, execution_target)
        )
        raw = functools.partial(
            raw_session_runner, package_dir, processor, threads=threads,
            processor_kwargs=extra.get("processor", {}), target=execution_target,
        )  # fmt: skip
        timing, pipeline_kwargs = (warmup, repeats), extra.get("pipeline", {})
        return [
            _timed_row(name, list(islice(cycle(sample), count)), pipes, raw, pipeline_kwargs, batch, timing)
            for name, sample in samples.items()
        ]


def _pipelines(
    task: str,
    package_dir: Path,
    source: Path,
    dynamic_dir: Path,
    modality: Modality,
    processor: Any,
    on: tuple[int, ExecutionTarget],
) -> dict[str, Any]:
    """(a) PyTorch on the source, (b) Optimum on its dynamic-axes export, (c) create_pipeline on the package
    (`on`: threads, and the target of (c))."""
    threads, target = on
    model, _ = load_ort_model(task, package_dir, session_options(threads), target=target)
    dynamic = optimum_dynamic_export(source, task, dynamic_dir, modality)
    loaded, plugin = modality.load_processor(str(source), trust_remote_code=False), plugin_task(task, modality)
    return {
        "pytorch": pytorch_baseline(task, source, plugin),
        "optimum": optimum_baseline(task, dynamic, loaded, threads, plugin),
        "modelexport": create_pipeline(task, model, data_processor=processor),
    }


def _timed_row(
    name: str,
    inputs: list[Any],
    pipes: dict[str, Any],
    raw: Callable[[list[Any]], tuple[Callable[[], Any], float]],
    pipeline_kwargs: dict[str, Any],
    batch: int,
    timing: tuple[int, int],
) -> BenchmarkRow:
    """One input set through every pipeline, then pre-processed straight to the raw session (d)."""
    raw_run, preprocess_seconds = raw(inputs)
    seconds = {
        runner: median_seconds(lambda p=pipe: p(inputs, batch_size=batch, **pipeline_kwargs), *timing)
        for runner, pipe in pipes.items()
    }
    seconds["onnxruntime"] = median_seconds(raw_run, *timing)
    return BenchmarkRow(name, len(inputs), batch, seconds, preprocess_seconds)


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
