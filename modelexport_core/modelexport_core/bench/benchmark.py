"""`modelexport benchmark`: the same inputs through PyTorch, Optimum, our pipeline and a raw session, side by side."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelexport_core.bench.runners import median_seconds, optimum_dynamic_export, raw_session_runner
from modelexport_core.errors import ModelExportError
from modelexport_core.package.layout import MODEL_FILE, package_task
from modelexport_core.package.ort_model import ort_model_class
from modelexport_core.package.shapes import detect_shapes
from modelexport_core.plugins.manager import get_modality
from modelexport_core.quiet import quieted
from modelexport_core.serve.auto import ONNXAutoProcessor
from modelexport_core.serve.pipeline import create_pipeline
from modelexport_core.serve.routing import routed_processor
from modelexport_core.targets.registry import session_options

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
) -> list[BenchmarkRow]:
    """Time every runner on each of the modality's sample input sets; `count` inputs each (default 4 batches)."""
    import torch
    from optimum.pipelines import pipeline as optimum_pipeline
    from transformers import pipeline
    from transformers.pipelines import check_task

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
        model = ort_model_class(task).from_pretrained(
            package_dir, trust_remote_code=False, session_options=session_options(threads)
        )
        dynamic = optimum_dynamic_export(source, task, Path(dynamic_dir))
        dynamic_model = ort_model_class(task).from_pretrained(
            dynamic, trust_remote_code=False, session_options=session_options(threads)
        )
        # The source's own (unwrapped) processor, under the keyword its kind goes to (tokenizer, image_processor, ...).
        loaded = modality.load_processor(str(source), trust_remote_code=False)
        source_processor = routed_processor(check_task(task)[1]["impl"], loaded)
        pipes = {
            "pytorch": pipeline(task, model=str(source), framework="pt", trust_remote_code=False),
            "optimum": optimum_pipeline(task, model=dynamic_model, accelerator="ort", **source_processor),
            "modelexport": create_pipeline(task, model, data_processor=processor),
        }
        for name, sample in samples.items():
            inputs = (sample * (1 + (count or 4 * batch) // len(sample)))[: count or 4 * batch]
            raw_run, preprocess_seconds = raw_session_runner(package_dir, processor, inputs, threads, processor_kwargs)
            seconds = {
                runner: median_seconds(
                    lambda p=pipe, x=inputs: p(x, batch_size=batch, **pipeline_kwargs), warmup, repeats
                )
                for runner, pipe in pipes.items()
            }
            seconds["onnxruntime"] = median_seconds(raw_run, warmup, repeats)
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
