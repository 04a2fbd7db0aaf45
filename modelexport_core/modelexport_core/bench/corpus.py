"""`modelexport benchmark --corpus`: a realistic workload through every way of serving the model, side by side."""

from __future__ import annotations

import functools
import gc
import multiprocessing
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnx

from modelexport_core.bench.cpu import cpu_description
from modelexport_core.bench.memory import PeakMemory
from modelexport_core.bench.runners import (
    check_source,
    interleaved_medians,
    optimum_baseline,
    optimum_dynamic_export,
    plugin_task,
    pytorch_baseline,
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
from modelexport_core.serve.pipeline import create_pipeline
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
CEILINGS = ("raw_dynamic", "raw_dynamic_int8")
INT8_RUNNERS = ("int8_buckets", "raw_dynamic_int8")  # compared with the int8 ceiling; the others with fp32's
CEILING_NOTE = (
    "length-sorted, each batch padded to its longest, processed beforehand (not counted): "
    "the ceiling without fixed shapes"
)

Prepared = tuple[Callable[[], Any], Any]  # a runner's run, and what it was built on (pipeline, preprocess seconds)


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
    cpu: str = field(default_factory=cpu_description)

    def ratio(self, row: CorpusRow) -> float:
        """Throughput relative to the PyTorch pipeline (2.0 = twice as fast)."""
        return self.rows[0].seconds / row.seconds

    def ceiling_ratio(self, row: CorpusRow) -> float | None:
        """Throughput relative to the raw dynamic-axes session of its precision (1.0 = at the ceiling)."""
        name = "raw_dynamic_int8" if row.runner in INT8_RUNNERS else "raw_dynamic"
        ceiling = next((r for r in self.rows if r.runner == name), None)
        return ceiling.seconds / row.seconds if ceiling else None

    def to_dict(self) -> dict[str, Any]:
        rows = [
            {**asdict(row), "x_pytorch": round(self.ratio(row), 3), "x_ceiling": _rounded(self.ceiling_ratio(row))}
            for row in self.rows
        ]
        return {**asdict(self), "rows": rows}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _package_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) / 2**20


def _bucket_use(pipe: Any, passes: int) -> str:
    """Batches served per bucket length in one pass over the corpus, for a pipeline over a bucketed package."""
    model = getattr(pipe.model, "model", None)
    if not isinstance(model, BucketedModel):
        return ""
    runs = ", ".join(f"{n}: {model.runs[n] // passes}" for n in model.lengths if model.runs[n])
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
    """Time every runner over the modality's benchmark corpus (its first `count` inputs): each runner's peak
    memory in a fresh process of its own, then the runners' timed runs side by side, in interleaved rounds.

    The fresh processes are spawned: a script calling this needs the `if __name__ == "__main__":` guard."""
    package_dir, source, int8 = Path(package_dir), Path(source), Path(int8_dir) if int8_dir else None
    task, detected, modality, inputs = _workload(package_dir, source, int8, task, count)
    sizes = {"fp32": _package_mb(package_dir), **({"int8": _package_mb(int8)} if int8 else {})}
    report = CorpusReport(
        len(inputs), detected.shapes["batch_size"], threads, {k: round(v, 1) for k, v in sizes.items()}
    )
    with quieted("transformers", "optimum", stderr=True), tempfile.TemporaryDirectory() as dynamic_dir:
        dynamic = optimum_dynamic_export(source, task, Path(dynamic_dir), modality) / MODEL_FILE
        workload = CorpusWorkload(package_dir, source, int8, task, count, threads, dynamic)
        builders = workload.builders()
        peaks = _isolated_peaks_mb(workload, list(builders), warmup)
        built = {runner: build() for runner, build in builders.items()}
        seconds = interleaved_medians({runner: run for runner, (run, _) in built.items()}, warmup, repeats)
    for runner, (_, what) in built.items():
        detail = _detail(runner, what, warmup + repeats)
        report.rows.append(CorpusRow(runner, LABELS[runner], seconds[runner], peaks[runner], detail))
    return report


@dataclass(frozen=True)
class CorpusWorkload:
    """What every runner of one benchmark is built from (plain values: a fresh process rebuilds them)."""

    package_dir: Path
    source: Path
    int8: Path | None
    task: str
    count: int | None
    threads: int
    dynamic: Path  # Optimum's dynamic-axes export

    def builders(self) -> dict[str, Callable[[], Prepared]]:
        """How to build each runner, in the table's order: the pipelines, the raw session, the ceilings."""
        import torch

        torch.set_num_threads(self.threads)
        _, detected, modality, inputs = _workload(self.package_dir, self.source, self.int8, self.task, self.count)
        batch, threads, package_dir = detected.shapes["batch_size"], self.threads, self.package_dir
        loaded = modality.load_processor(str(self.source), trust_remote_code=False)
        builders = {
            runner: functools.partial(_pipeline_run, build, inputs, batch)
            for runner, build in _pipelines(self, (loaded, modality)).items()
        }
        processor = ONNXAutoProcessor.from_model(package_dir / MODEL_FILE)
        builders["raw"] = lambda: raw_session_runner(package_dir, processor, inputs, threads, {})
        if modality.length_dim is not None:
            longest = detected.shapes.get(modality.length_dim)
            ordered = [inputs[i] for i in length_order(modality.input_lengths(inputs, loaded), len(inputs))]
            for runner, model in _ceilings(self.dynamic, self.int8 is not None).items():
                builders[runner] = functools.partial(_ceiling_run, model, loaded, ordered, batch, longest, threads)
        return builders


def _isolated_peaks_mb(workload: CorpusWorkload, runners: list[str], warmup: int) -> dict[str, float]:
    """Each runner's peak memory, measured in a fresh process of its own (in this one, memory that runners before
    it freed would be reused and not counted); the processes run side by side, as each counts only its own."""
    context = multiprocessing.get_context("spawn")
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        peaks = {runner: pool.submit(_peak_mb_of, workload, runner, warmup) for runner in runners}
        return {runner: peak.result() for runner, peak in peaks.items()}


def _peak_mb_of(workload: CorpusWorkload, runner: str, warmup: int) -> float:
    with quieted("transformers", "optimum", stderr=True):
        build = workload.builders()[runner]
        gc.collect()
        with PeakMemory() as memory:
            run, _ = build()
            for _ in range(max(1, warmup)):
                run()
    return memory.peak_mb


def _workload(
    package_dir: Path, source: Path, int8: Path | None, task: str | None, count: int | None
) -> tuple[str, Any, Any, list[Any]]:
    """The task, detected shapes, modality and corpus inputs of a benchmark; a user error for bad arguments."""
    check_source(source)
    if int8 and not (int8 / MODEL_FILE).is_file():
        raise ModelExportError(f"--int8 must be an int8 package directory (no {MODEL_FILE} in {int8})")
    detected = detect_shapes(package_dir / MODEL_FILE)
    modality = get_modality(detected.modality)
    corpus = modality.corpus()
    if not corpus:
        raise ModelExportError(f"No installed plugin provides a benchmark corpus for {detected.modality} models")
    return task or package_task(package_dir), detected, modality, list(corpus[:count] if count else corpus)


def _pipelines(workload: CorpusWorkload, processing: tuple[Any, Any]) -> dict[str, Callable[[], Any]]:
    """How to build each pipeline runner: PyTorch, Optimum on the dynamic export, and ours in each mode
    (`processing`: the source's processor and the modality)."""
    task, package_dir, int8, source, threads = (
        workload.task, workload.package_dir, workload.int8, workload.source, workload.threads
    )  # fmt: skip
    loaded, plugin = processing[0], plugin_task(task, processing[1])

    def ours(**kwargs: Any) -> Any:  # options of its own: no two runners share sessions
        return create_pipeline(
            model=kwargs.pop("model", package_dir), task=task, session_options=session_options(threads), **kwargs
        )

    factories: dict[str, Callable[[], Any]] = {
        "pytorch": lambda: pytorch_baseline(task, source, plugin),
        "optimum": lambda: optimum_baseline(task, workload.dynamic.parent, loaded, threads, plugin),
        "fp32_single": lambda: ours(use_buckets=False, sort_by_length=False),
        "fp32_buckets_unsorted": lambda: ours(sort_by_length=False),
        "fp32_buckets": ours,
    }
    if int8:
        factories["int8_buckets"] = lambda: ours(model=int8)
    return factories


def _pipeline_run(build: Callable[[], Any], inputs: list[Any], batch: int) -> Prepared:
    pipe = build()
    return (lambda: pipe(inputs, batch_size=batch)), pipe


def _ceiling_run(
    model: Callable[[], str | bytes], processor: Any, ordered: list[Any], batch: int, longest: int | None, threads: int
) -> Prepared:
    return raw_dynamic_runner(model(), processor, ordered, batch, longest, threads), None


def _ceilings(dynamic: Path, int8: bool) -> dict[str, Callable[[], str | bytes]]:
    """The raw dynamic-axes sessions without fixed shapes: fp32, and every matmul int8 when int8 is compared."""
    ceilings: dict[str, Callable[[], str | bytes]] = {"raw_dynamic": lambda: str(dynamic)}
    if int8:
        ceilings["raw_dynamic_int8"] = lambda: quantize_graph(onnx.load(dynamic), []).SerializeToString()
    return ceilings


def _detail(runner: str, built: Any, passes: int) -> str:
    """What the table prints under a runner: a pipeline's bucket use, the raw row's preprocessing, the ceilings'
    conditions."""
    if runner == "raw":
        return f"inputs processed beforehand, in {built * 1000:.0f} ms (not counted)"
    return CEILING_NOTE if runner in CEILINGS else _bucket_use(built, passes)


def print_corpus_report(report: CorpusReport, console: Any) -> None:
    """The side-by-side table: median seconds, inputs per second, throughput x PyTorch, peak memory."""
    from rich.table import Table

    title = f"corpus: {report.count} inputs, batch {report.batch_size}, {report.threads} thread(s)"
    table = Table(title=title, caption=f"CPU: {report.cpu}; x ceiling: against the raw dynamic row of its precision")
    table.add_column("runner", no_wrap=True)
    for header in ("median s", "inputs/s", "x PyTorch", "x ceiling", "peak MB"):
        table.add_column(header, justify="right")
    for row in report.rows:
        ceiling = report.ceiling_ratio(row)
        table.add_row(
            row.label,
            f"{row.seconds:.3f}",
            f"{report.count / row.seconds:.0f}",
            f"{report.ratio(row):.2f}",
            "-" if ceiling is None else f"{ceiling:.2f}",
            f"{row.peak_mb:.0f}",
        )
    console.print(table)
    for row in report.rows:
        if row.detail:
            console.print(f"{row.label}: {row.detail}", highlight=False)
    sizes = ", ".join(f"{name} {mb:.1f} MB" for name, mb in report.package_mb.items())
    console.print(
        f"package sizes: {sizes}; peak MB = RSS growth while the runner was built and ran, alone in a fresh process",
        highlight=False,
    )
