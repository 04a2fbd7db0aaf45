"""`modelexport benchmark --corpus`: a realistic workload through every way of serving the model, side by side."""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnx

from modelexport_core.bench.memory import PeakMemory
from modelexport_core.bench.runners import (
    median_seconds,
    optimum_dynamic_export,
    raw_dynamic_runner,
    raw_session_runner,
)
from modelexport_core.errors import ModelExportError
from modelexport_core.package.layout import MODEL_FILE, package_task
from modelexport_core.package.shapes import detect_shapes
from modelexport_core.plugins.manager import get_modality
from modelexport_core.quantize.int8 import quantize_graph
from modelexport_core.quiet import quieted
from modelexport_core.serve.auto import ONNXAutoProcessor
from modelexport_core.serve.buckets import BucketedModel
from modelexport_core.serve.models import ort_model_class
from modelexport_core.serve.sorting import length_order
from modelexport_core.targets.registry import session_options

LABELS = {
    "pytorch": "PyTorch pipeline",
    "optimum": "Optimum, dynamic axes",
    "fp32_single": "ours fp32 single length",
    "fp32_buckets_unsorted": "ours fp32 buckets unsorted",
    "fp32_buckets": "ours fp32 buckets",
    "int8_buckets": "ours int8 buckets",
    "raw": "raw session, model.onnx",
    "raw_dynamic": "raw dynamic axes, sorted",
    "raw_dynamic_int8": "raw dynamic axes int8, sorted",
}
CEILING_NOTE = (
    "length-sorted, each batch padded to its longest, processed beforehand (not counted): "
    "the ceiling without fixed shapes"
)


@dataclass
class CorpusRow:
    """One runner over the whole corpus: median seconds, peak RSS growth, and how it served the batches."""

    runner: str
    label: str
    seconds: float
    peak_mb: float
    detail: str = ""


@dataclass
class CorpusReport:
    """Every runner on the same inputs, with the settings they ran under."""

    count: int
    batch_size: int
    threads: int
    package_mb: dict[str, float]
    rows: list[CorpusRow] = field(default_factory=list)

    def ratio(self, row: CorpusRow) -> float:
        """Throughput relative to the PyTorch pipeline (2.0 = twice as fast)."""
        return self.rows[0].seconds / row.seconds

    def to_dict(self) -> dict[str, Any]:
        rows = [{**asdict(row), "x_pytorch": round(self.ratio(row), 3)} for row in self.rows]
        return {**asdict(self), "rows": rows}


def _package_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) / 2**20


def _bucket_use(pipe: Any) -> str:
    """Batches served per bucket length, for a pipeline over a bucketed package."""
    model = getattr(pipe.model, "model", None)
    if not isinstance(model, BucketedModel):
        return ""
    runs = ", ".join(f"{length}: {model.runs[length]}" for length in model.lengths if model.runs[length])
    return f"batches per length {{{runs}}}, {model.sessions_loaded} sessions"


def run_corpus_benchmark(
    package_dir: str | Path,
    source: str | Path,
    int8_dir: str | Path | None = None,
    task: str | None = None,
    count: int | None = None,
    threads: int = 1,
    warmup: int = 1,
    repeats: int = 3,
) -> CorpusReport:
    """Time every runner over the modality's benchmark corpus (its first `count` inputs), one runner at a time."""
    import torch
    from optimum.pipelines import pipeline as optimum_pipeline
    from transformers import pipeline
    from transformers.pipelines import check_task

    from modelexport_core.serve.pipeline import create_pipeline
    from modelexport_core.serve.routing import routed_processor

    package_dir, source = Path(package_dir), Path(source)
    if not (source / "config.json").is_file():
        raise ModelExportError(f"--source must be the original model directory (no config.json in {source})")
    if int8_dir and not (Path(int8_dir) / MODEL_FILE).is_file():
        raise ModelExportError(f"--int8 must be an int8 package directory (no {MODEL_FILE} in {int8_dir})")
    task = task or package_task(package_dir)
    detected = detect_shapes(package_dir / MODEL_FILE)
    modality = get_modality(detected.modality)
    corpus = modality.corpus()
    if not corpus:
        raise ModelExportError(f"No installed plugin provides a benchmark corpus for {detected.modality} models")
    inputs = list(corpus[:count] if count else corpus)
    batch = detected.shapes["batch_size"]
    sizes = {"fp32": _package_mb(package_dir), **({"int8": _package_mb(Path(int8_dir))} if int8_dir else {})}
    report = CorpusReport(len(inputs), batch, threads, {k: round(v, 1) for k, v in sizes.items()})
    torch.set_num_threads(threads)
    with quieted("transformers", "optimum", stderr=True), tempfile.TemporaryDirectory() as dynamic_dir:
        options = session_options(threads)
        dynamic = optimum_dynamic_export(source, task, Path(dynamic_dir))
        loaded = modality.load_processor(str(source))
        source_processor = routed_processor(check_task(task)[1]["impl"], loaded)
        ours = {"task": task, "session_options": options}
        factories: dict[str, Callable[[], Any]] = {
            "pytorch": lambda: pipeline(task, model=str(source), framework="pt"),
            "optimum": lambda: optimum_pipeline(
                task,
                model=ort_model_class(task).from_pretrained(dynamic, session_options=options),
                accelerator="ort",
                **source_processor,
            ),
            "fp32_single": lambda: create_pipeline(model=package_dir, use_buckets=False, sort_by_length=False, **ours),
            "fp32_buckets_unsorted": lambda: create_pipeline(model=package_dir, sort_by_length=False, **ours),
            "fp32_buckets": lambda: create_pipeline(model=package_dir, **ours),
        }
        if int8_dir:
            factories["int8_buckets"] = lambda: create_pipeline(model=Path(int8_dir), **ours)
        for runner, factory in factories.items():
            gc.collect()
            with PeakMemory() as memory:
                pipe = factory()
                seconds = median_seconds(lambda p=pipe: p(inputs, batch_size=batch), warmup, repeats)
            report.rows.append(CorpusRow(runner, LABELS[runner], seconds, memory.peak_mb, _bucket_use(pipe)))
            del pipe
        gc.collect()
        with PeakMemory() as memory:
            processor = ONNXAutoProcessor.from_model(package_dir / MODEL_FILE)
            run, preprocess_seconds = raw_session_runner(package_dir, processor, inputs, threads, {})
            seconds = median_seconds(run, warmup, repeats)
        detail = f"inputs processed beforehand, in {preprocess_seconds * 1000:.0f} ms (not counted)"
        report.rows.append(CorpusRow("raw", LABELS["raw"], seconds, memory.peak_mb, detail))
        if modality.length_dim is not None:
            dynamic_model = Path(dynamic) / MODEL_FILE
            ceilings = {"raw_dynamic": lambda: str(dynamic_model)}
            if int8_dir:
                ceilings["raw_dynamic_int8"] = lambda: quantize_graph(onnx.load(dynamic_model), []).SerializeToString()
            longest = detected.shapes.get(modality.length_dim)
            order = length_order(modality.input_lengths(inputs, loaded), len(inputs))
            ordered = [inputs[i] for i in order]
            for runner, model in ceilings.items():
                gc.collect()
                with PeakMemory() as memory:
                    run = raw_dynamic_runner(model(), loaded, ordered, batch, longest, threads)
                    seconds = median_seconds(run, warmup, repeats)
                report.rows.append(CorpusRow(runner, LABELS[runner], seconds, memory.peak_mb, CEILING_NOTE))
    return report


def print_corpus_report(report: CorpusReport, console: Any) -> None:
    """The side-by-side table: median seconds, inputs per second, throughput x PyTorch, peak memory."""
    from rich.table import Table

    title = f"corpus: {report.count} inputs, batch {report.batch_size}, {report.threads} thread(s)"
    table = Table(title=title)
    table.add_column("runner", no_wrap=True)
    for header in ("median s", "inputs/s", "x PyTorch", "peak MB"):
        table.add_column(header, justify="right")
    for row in report.rows:
        table.add_row(
            row.label,
            f"{row.seconds:.3f}",
            f"{report.count / row.seconds:.0f}",
            f"{report.ratio(row):.2f}",
            f"{row.peak_mb:.0f}",
        )
    console.print(table)
    for row in report.rows:
        if row.detail:
            console.print(f"{row.label}: {row.detail}", highlight=False)
    sizes = ", ".join(f"{name} {mb:.1f} MB" for name, mb in report.package_mb.items())
    console.print(f"package sizes: {sizes}; peak MB = RSS growth while the runner was built and ran", highlight=False)
