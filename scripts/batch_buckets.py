"""Batch-size buckets on all-MiniLM-L6-v2: `python scripts/batch_buckets.py [OUT_DIR]`.

Exports the model three ways, each with the demo's sequence-length buckets: `--batch-size 8`, `--batch-size 1`
and `--batch-size 1,8`. Then, side by side in one run (runners interleaved call by call): the latency of one
text (median over 64 corpus sentences, each called alone), the corpus throughput (320 sentences, the pipeline's
batch 8, sorted by length; best of 3), and each package's size. Prints one markdown table and the CPU.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from statistics import median

from modelexport_core import create_pipeline, export
from modelexport_core.bench.cpu import cpu_description
from modelexport_core.package.files import package_storage
from modelexport_core.plugins.manager import get_modality

from demo import SEQUENCE_LENGTHS, minilm_dir

BATCHES = {"--batch-size 8": [8], "--batch-size 1": [1], "--batch-size 1,8": [1, 8]}
SINGLE_TEXTS = 64
PIPELINE_BATCH = 8


def _seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main(out_dir: Path) -> None:
    corpus = get_modality("text").corpus()
    pipes = {}
    for name, batches in BATCHES.items():
        package = out_dir / name.split()[-1].replace(",", "-")
        if not (package / "model.onnx").is_file():
            export(minilm_dir(), package, batch_size=batches, sequence_length=SEQUENCE_LENGTHS, force=True)
        pipes[name] = (create_pipeline("feature-extraction", package), package)
    for pipe, _ in pipes.values():  # warm-up: every session loaded
        pipe(corpus, batch_size=PIPELINE_BATCH)
        pipe(corpus[0])
    single = {name: [] for name in pipes}
    for text in corpus[:SINGLE_TEXTS]:
        for name, (pipe, _) in pipes.items():
            single[name].append(_seconds(lambda pipe=pipe, text=text: pipe(text)))
    corpus_seconds = {name: [] for name in pipes}
    for _ in range(3):
        for name, (pipe, _) in pipes.items():
            corpus_seconds[name].append(_seconds(lambda pipe=pipe: pipe(corpus, batch_size=PIPELINE_BATCH)))
    print(f"CPU: {cpu_description()}")
    print("| package | graphs | size (MB) | one text (ms, median) | corpus (texts/s, best of 3) |")
    print("|---|---|---|---|---|")
    for name, (_, package) in pipes.items():
        storage = package_storage(package)
        graphs = sum(1 for file in storage["files"] if file.endswith(".onnx"))
        print(
            f"| {name} | {graphs} | {storage['total_bytes'] / 1e6:.1f} | {1000 * median(single[name]):.2f} "
            f"| {len(corpus) / min(corpus_seconds[name]):.0f} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/batch-buckets"))
