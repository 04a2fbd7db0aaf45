"""`run_job`: a package's task over every row of a file, into OUTPUT, on the local or the Ray engine."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.package.layout import find_model_file
from modelexport_core.package.shapes import detect_shapes
from modelexport_core.plugins.manager import get_modality
from modelexport_core.run.engines import RayOptions, local_batches, ray_batches
from modelexport_core.run.progress import progress_reporter
from modelexport_core.run.shards import Shards
from modelexport_core.run.table import OUTPUT_FORMATS, ROW_NUMBER, read_rows

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class RunOptions:
    """What a run reads and how it calls the pipeline (see `Predictor`)."""

    column: str | None = None
    id_column: str | None = None
    drop_input: bool = False
    pipeline_args: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    use_buckets: bool = True
    sort_by_length: bool = True
    target: str = "cpu"
    task: str | None = None
    shard_rows: int = 512


def run_job(
    package: Path,
    input_path: Path,
    output: Path,
    options: RunOptions | None = None,
    *,
    engine: str = "local",
    ray: RayOptions | None = None,
    resume: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Write one output row per input row (its id, its input unless dropped, the answer's columns, `error`).
    Everything a user can get wrong is refused before any work; finished shards survive an interruption and
    `resume` skips them. Returns a summary (`_summary`)."""
    options, ray = options or RunOptions(), ray or RayOptions()
    if engine not in ENGINES:
        raise ModelExportError(f"--engine takes {' or '.join(ENGINES)}, not {engine!r}")
    if output.suffix not in OUTPUT_FORMATS:
        raise ModelExportError(f"OUTPUT {output} must end with {', '.join(OUTPUT_FORMATS)}")
    modality = get_modality(detect_shapes(find_model_file(package)).modality)
    column, id_column = options.column or modality.input_column, options.id_column or ROW_NUMBER
    rows = read_rows(input_path, column, options.id_column)
    shards = Shards(output, id_column)
    shards.claim(resume, force)
    done = shards.finished_ids()
    remaining = [row for row in rows if row[id_column] not in done]
    start = time.perf_counter()
    first = _write_shards(shards, _batches(remaining, package, column, options, engine, ray), len(rows), len(done))
    written = shards.join([row[id_column] for row in rows])
    return _summary(output, written, len(done), start, first)


def _write_shards(shards: Shards, batches: Iterator[list[dict[str, Any]]], total: int, done: int) -> float | None:
    """Each batch as a shard, with progress; when the first one was back. A run stopped before its first shard
    leaves nothing; one stopped later says how to finish it."""
    first = None
    try:
        with progress_reporter(total, done, sys.stderr) as advance:
            for batch in batches:
                shards.write(batch)
                advance(len(batch))
                done += len(batch)
                first = first or time.perf_counter()
    except BaseException as err:
        if shards.discard_if_empty() or not isinstance(err, KeyboardInterrupt):
            raise
        raise ModelExportError(
            f"interrupted: {done} of {total} rows are in {shards.directory}: run again with --resume to finish"
        ) from None
    return first


def _summary(output: Path, written: Any, resumed: int, start: float, first: float | None) -> dict[str, Any]:
    """Rows, errors and speed over the whole run; `startup_seconds`: until the first batch was back (loading the
    package, starting Ray and its actors, and that batch)."""
    end = time.perf_counter()
    ran = written.num_rows - resumed
    return {
        "output": str(output),
        "rows": written.num_rows,
        "errors": written.num_rows - written.column("error").null_count,
        "resumed": resumed,
        "seconds": round(end - start, 2),
        "startup_seconds": round(first - start, 2) if first else None,
        "rows_per_second": round(ran / (end - start), 1) if ran else None,
    }


def _batches(
    rows: list[dict[str, Any]], package: Path, column: str, options: RunOptions, engine: str, ray: RayOptions
) -> Iterator[list[dict[str, Any]]]:
    if not rows:
        return iter(())
    predictor = {
        "package": str(package),
        "task": options.task,
        "column": column,
        "id_column": options.id_column,
        "drop_input": options.drop_input,
        "pipeline_args": options.pipeline_args,
        "batch_size": options.batch_size,
        "use_buckets": options.use_buckets,
        "sort_by_length": options.sort_by_length,
        "target": options.target,
    }
    if engine == "ray":
        return ray_batches(rows, predictor, options.shard_rows, ray)
    return local_batches(rows, predictor, options.shard_rows)
