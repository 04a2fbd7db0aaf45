"""Throughput of one `create_pipeline` shared by N threads against one thread, over the package modality's corpus:
`python scripts/thread_throughput.py PACKAGE [THREADS] [INTRA_OP_THREADS]`."""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import onnxruntime

from modelexport_core import create_pipeline, detect_shapes
from modelexport_core.plugins.manager import get_modality


def throughput(package: Path, threads: int, intra_op: int | None, repeats: int = 3) -> tuple[float, float]:
    """Inputs per second (best of `repeats`) with 1 thread, and with `threads` threads sharing one pipeline."""
    options = onnxruntime.SessionOptions()
    if intra_op:
        options.intra_op_num_threads = intra_op
    task = json.loads((package / "export_metadata.json").read_text())["task"]
    detected = detect_shapes(package)
    corpus, batch = get_modality(detected.modality).corpus(), detected.shapes["batch_size"]
    pipe = create_pipeline(task, package, session_options=options)
    pipe(corpus, batch_size=batch)  # warm-up: every bucket session loaded

    def timed(parts: int) -> float:
        start = time.perf_counter()
        with ThreadPoolExecutor(parts) as pool:
            list(pool.map(lambda part: pipe(corpus[part::parts], batch_size=batch), range(parts)))
        return len(corpus) / (time.perf_counter() - start)

    return max(timed(1) for _ in range(repeats)), max(timed(threads) for _ in range(repeats))


if __name__ == "__main__":
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    intra_op = int(sys.argv[3]) if len(sys.argv) > 3 else None
    one, many = throughput(Path(sys.argv[1]), threads, intra_op)
    print(
        f"intra-op threads {intra_op or 'default'}: 1 thread {one:.0f} inputs/s, {threads} threads sharing the "
        f"pipeline {many:.0f} inputs/s ({many / one:.2f}x)"
    )
