"""The real all-MiniLM-L6-v2 at every NPU precision: package sizes, the gate's report, and mean-pooled embeddings
against PyTorch fp32 over the corpus held out from calibration, run through create_pipeline on the CPU; then a
handful of sentences through create_pipeline(target="qnn-htp") against the same package on the CPU.

    python scripts/npu_precisions.py OUT_ROOT [PRECISION ...]     (default: fp32 fp16 w8a16 w8a8)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from modelexport_core import ModelExportError, create_pipeline, export
from modelexport_core.quantize.gate import CALIBRATION_SIZE
from modelexport_text.corpus import corpus_sentences

from demo import BATCH_SIZE, SEQUENCE_LENGTHS, minilm_dir

TASK = "feature-extraction"
HTP_SENTENCES = 4


def pooled(token_vectors: list) -> np.ndarray:
    """Mean over the real tokens (the pipeline returns only those), L2-normalised: sentence-transformers' vector."""
    vector = np.asarray(token_vectors, dtype=np.float64)[0].mean(axis=0)
    return vector / np.linalg.norm(vector)


def pytorch_vectors(sentences: list[str]) -> list[np.ndarray]:
    from transformers import pipeline

    pipe = pipeline(TASK, model=str(minilm_dir()), framework="pt")
    return [pooled(v) for v in pipe(sentences, tokenize_kwargs={"truncation": True, "max_length": 128})]


def export_at(precision: str, out_root: Path) -> Path:
    out_dir = out_root / f"minilm-{precision}"
    if not out_dir.exists():
        options = {"fp32": {}, "fp16": {"dtype": "fp16"}}.get(precision, {"quantize": precision})
        start = time.perf_counter()
        export(minilm_dir(), out_dir, task=TASK, batch_size=BATCH_SIZE, sequence_length=SEQUENCE_LENGTHS,
               target="qnn-htp", **options)  # fmt: skip
        print(f"{precision}: exported in {time.perf_counter() - start:.0f} s")
    return out_dir


def report(precision: str, out_dir: Path, held_out: list[str], reference: list[np.ndarray]) -> dict:
    metadata = json.loads((out_dir / "export_metadata.json").read_text())
    vectors = [pooled(v) for v in create_pipeline(TASK, out_dir)(held_out, batch_size=BATCH_SIZE)]
    cosines = np.array([a @ b for a, b in zip(vectors, reference, strict=True)])
    row = {
        "precision": precision,
        "package_bytes": sum(p.stat().st_size for p in out_dir.iterdir() if p.name.startswith("model")),
        "worst_cosine": round(float(cosines.min()), 5),
        "mean_cosine": round(float(cosines.mean()), 5),
        "kept": metadata.get("quantization", {}).get("kept_modules"),
        "gate": {k: metadata.get("quantization", {}).get(k) for k in ("metric", "value", "inputs")},
    }
    if precision != "fp32":
        row["nodes_off_the_htp"] = off_the_htp(out_dir)
        row["htp_vs_cpu_cosine"] = on_the_htp(out_dir, held_out[:HTP_SENTENCES])
    return row


def off_the_htp(out_dir: Path) -> dict[str, int]:
    """Per graph (every bucket), how many nodes onnxruntime would leave to the CPU on the HTP."""
    from modelexport_core import get_target
    from modelexport_core.package.buckets import graph_files
    from modelexport_core.targets.placement import node_placement

    htp = get_target("qnn-htp")
    placed = {graph: node_placement(out_dir / graph, htp) for graph in graph_files(out_dir / "model.onnx")}
    return {graph: sum(node.provider != htp.provider for node in nodes) for graph, nodes in placed.items()}


def session_seconds(out_dir: Path) -> dict[str, float]:
    """Median seconds to create the largest graph's HTP session, from model.onnx and from `compile`'s context."""
    import shutil

    from modelexport_core import get_target
    from modelexport_core.targets.compile import compile_package, compiled_graph
    from modelexport_core.targets.registry import target_session

    htp, compiled = get_target("qnn-htp"), out_dir.with_name(out_dir.name + "-compiled")
    if not compiled.exists():
        shutil.copytree(out_dir, compiled)
        compile_package(compiled, htp)
    timings = {}
    for name, model in (
        ("model.onnx", out_dir / "model.onnx"),
        ("compiled", compiled_graph(compiled / "model.onnx", htp)),
    ):
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            target_session(str(model), htp)
            runs.append(time.perf_counter() - start)
        timings[name] = round(sorted(runs)[1], 3)
    return timings


def on_the_htp(out_dir: Path, sentences: list[str]) -> float:
    """The worst cosine of the HTP simulator's vectors to the same package's on the CPU (about 5 s a batch)."""
    cpu = [pooled(v) for v in create_pipeline(TASK, out_dir)(sentences)]
    htp = [pooled(v) for v in create_pipeline(TASK, out_dir, target="qnn-htp")(sentences)]
    return round(float(min(a @ b for a, b in zip(cpu, htp, strict=True))), 6)


def main() -> None:
    out_root = Path(sys.argv[1])
    precisions = sys.argv[2:] or ["fp32", "fp16", "w8a16", "w8a8"]
    held_out = list(corpus_sentences())[CALIBRATION_SIZE:]
    reference = pytorch_vectors(held_out)
    for precision in precisions:
        try:
            row = report(precision, export_at(precision, out_root), held_out, reference)
        except ModelExportError as err:
            row = {"precision": precision, "refused": str(err)}
        print(json.dumps(row), flush=True)
        if precision == "w8a16" and "refused" not in row:
            print(json.dumps({"w8a16 session creation seconds": session_seconds(out_root / "minilm-w8a16")}))


if __name__ == "__main__":
    main()
