"""What `modelexport run` costs over calling create_pipeline: `python scripts/run_throughput.py PACKAGE [REPEAT]`.

Over the 320-sentence corpus repeated REPEAT times (default 10), one after another on this machine: the pipeline
called directly (its answers only), `run` on the local engine, and `run --engine ray` with 1 and 2 actors (a
local Ray started by the run), each writing Parquet. Rows/s are over each whole run, startup included (loading
the package; starting Ray and its actors), and the startup is given: the seconds until the first answers (for
run, its first shard of 64 rows). Prints a table and the CPU.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from modelexport_core import create_pipeline
from modelexport_core.bench.cpu import cpu_description
from modelexport_core.package.layout import package_task
from modelexport_core.plugins.manager import get_modality
from modelexport_core.run.engines import RayOptions
from modelexport_core.run.job import RunOptions, run_job


def main(package: Path, repeat: int) -> None:
    corpus = get_modality("text").corpus() * repeat
    directory = Path(tempfile.mkdtemp())
    source = directory / "corpus.jsonl"
    source.write_text("".join(json.dumps({"text": text}) + "\n" for text in corpus))
    start = time.perf_counter()
    pipe = create_pipeline(package_task(package), package)
    loaded = time.perf_counter()
    pipe(corpus, batch_size=8)
    done = time.perf_counter()
    rates = {"create_pipeline, called directly": (len(corpus) / (done - start), loaded - start)}
    options = RunOptions(batch_size=8, shard_rows=64)
    for name, engine, actors in (("run (local)", "local", 1), ("run --engine ray --actors 1", "ray", 1)):
        summary = run_job(package, source, directory / f"{engine}{actors}.parquet", options, engine=engine)
        rates[name] = (summary["rows_per_second"], summary["startup_seconds"])
    summary = run_job(package, source, directory / "ray2.parquet", options, engine="ray", ray=RayOptions(actors=2))
    rates["run --engine ray --actors 2"] = (summary["rows_per_second"], summary["startup_seconds"])
    print(f"CPU: {cpu_description()}; {len(corpus)} rows")
    print("| runner | rows/s (whole run) | startup (s) |")
    print("|---|---|---|")
    for name, (rate, startup) in rates.items():
        print(f"| {name} | {rate:.0f} | {startup:.1f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10)
