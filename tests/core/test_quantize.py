"""int8 export: dynamic quantization behind an accuracy gate, every node tagged, sensitive modules kept fp32
(the NPU precisions are in test_npu_precisions.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from modelexport_core import ModelExportError, create_pipeline, export
from modelexport_core.package.hierarchy import MODULE_PATH, iter_nodes, node_tags
from modelexport_core.quantize.gate import CALIBRATION_SIZE
from modelexport_core.quantize.int8 import quantize_graph
from modelexport_core.quantize.search import (
    first_outputs,
    module_sensitivity,
    quantizable_modules,
    select_kept_modules,
)
from modelexport_core.quantize.smooth import Smoothing, smoothed, smoothings
from modelexport_text.corpus import corpus_sentences

from tiny_models import write_spread_text_model, write_tiny_text_model

TASK = "feature-extraction"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BertModel at its default initialisation (std 0.02), as trained models' weights are spread."""
    return write_tiny_text_model(tmp_path_factory.mktemp("int8") / "tiny-bert", TASK)


@pytest.fixture(scope="module")
def int8_package(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("int8") / "bucketed-int8"
    export(source, out_dir, task=TASK, batch_size=8, sequence_length=[8, 16], quantize="int8", validate=False)
    return out_dir


def _mean_pooled(vectors: list) -> np.ndarray:
    vector = np.asarray(vectors, dtype=np.float64)[0].mean(axis=0)
    return vector / np.linalg.norm(vector)


def test_int8_export_records_the_gate_and_tags_every_node(int8_package: Path) -> None:
    report = json.loads((int8_package / "export_metadata.json").read_text())["quantization"]
    assert report["metric"] == "cosine" and report["min_agreement"] == 0.99
    assert 0.99 <= report["value"] <= 1 and report["max_deviation"] >= 0  # 1.0 where int8 kernels are exact (VNNI)
    assert report["inputs"] == 8 + len(corpus_sentences()) - CALIBRATION_SIZE  # validation batch, held-out corpus
    assert report["precision"] == "int8" and report["kept_at"] == "fp32"
    assert report["calibration_inputs"] == CALIBRATION_SIZE and report["prepared"]["smoothed_inputs"] >= 0
    assert len(report["most_sensitive"]) == (5 if report["kept_modules"] else 0)  # measured when plain int8 fails
    for name in ("model.onnx", "model_seq8.onnx"):
        graph = onnx.load(int8_package / name, load_external_data=False).graph
        nodes = list(iter_nodes(graph))
        assert all(MODULE_PATH in node_tags(node) for node in nodes)
        integer = [node_tags(node)[MODULE_PATH] for node in nodes if node.op_type == "MatMulInteger"]
        assert integer and all(path.startswith("encoder.layer.") for path in integer)  # the Linear each replaced


def test_int8_pipeline_meets_the_gate_on_every_corpus_sentence(int8_package: Path, source: Path) -> None:
    """The gate runs the corpus as create_pipeline does (sorted, bucketed), so what it passed holds for users."""
    from transformers import pipeline

    corpus = list(corpus_sentences())
    ours = create_pipeline(TASK, int8_package)(corpus, batch_size=8)
    reference = pipeline(TASK, model=str(source), framework="pt")(
        corpus, tokenize_kwargs={"truncation": True, "max_length": 16}
    )
    cosines = [float(_mean_pooled(a) @ _mean_pooled(b)) for a, b in zip(ours, reference, strict=True)]
    cosines = cosines[CALIBRATION_SIZE:]  # the gate holds the calibration sentences out
    gate = json.loads((int8_package / "export_metadata.json").read_text())["quantization"]["value"]
    assert min(cosines) >= 0.99 and min(cosines) == pytest.approx(gate, abs=1e-4), (min(cosines), gate)
    assert ours[0] != reference[0]  # quantized: close, not equal


def test_the_most_sensitive_modules_stay_fp32_until_the_gate_passes(text_package) -> None:
    model = onnx.load(text_package(TASK, 2) / "model.onnx")
    feeds = [{"input_ids": np.full((2, 16), 7, np.int64), "attention_mask": np.ones((2, 16), np.int64),
              "token_type_ids": np.zeros((2, 16), np.int64)}]  # fmt: skip
    sensitivity = module_sensitivity(model, feeds, quantize_graph)
    assert set(sensitivity) == set(quantizable_modules(model)) and all(v > 0 for v in sensitivity.values())
    tries: list[int] = []

    def accepts(keep_fp32: list[str]) -> bool:
        tries.append(len(keep_fp32))
        return len(keep_fp32) >= 3

    kept, _ = select_kept_modules(model, feeds, accepts, quantize_graph, max_kept_fraction=1.0)
    ranked = sorted(sensitivity, key=sensitivity.__getitem__, reverse=True)
    assert tries == [0, 1, 2, 4, 3] and kept == ranked[:3]  # doubling up to a count accepted, then bisection
    quantized = quantize_graph(model, kept)
    still_fp32 = {node_tags(node)[MODULE_PATH] for node in quantized.graph.node if node.op_type == "MatMul"}
    assert set(kept) <= still_fp32


def test_a_gate_that_cannot_pass_is_a_user_error_that_leaves_nothing(tmp_path: Path) -> None:
    """Weights spread to std 0.5 make every matmul's contribution large, so int8's rounding shows on any CPU."""
    source = write_spread_text_model(tmp_path / "spread-bert", TASK)
    out_dir = tmp_path / "int8"
    with pytest.raises(ModelExportError) as caught:
        export(source, out_dir, task=TASK, sequence_length=8, quantize="int8", min_agreement=1.0, validate=False)
    message = str(caught.value)
    assert message.startswith("int8 cosine 0.") and "is below --min-agreement 1.0 even with" in message
    assert message.endswith("export without it, or lower --min-agreement") and "\n" not in message
    assert not out_dir.exists()
    with pytest.raises(
        ModelExportError, match=r"^--quantize takes int8, w8a16, w8a8 \(fp16 is --dtype fp16\), not 'int4'$"
    ):
        export(source, out_dir, task=TASK, quantize="int4")


def test_validate_on_qnn_htp_says_dynamic_int8_is_cpu_only(int8_package: Path) -> None:
    from conftest import assert_user_error, invoke

    pytest.importorskip("onnxruntime_qnn", reason="needs onnxruntime-qnn: pip install 'modelexport-core[qnn]'")
    line = assert_user_error(
        invoke("validate", int8_package, "--target", "qnn-htp"),
        "dynamic int8 quantization",
        "a CPU-only feature that QNN refuses",
    )
    assert line.startswith("Error: bucketed-int8 holds DynamicQuantizeLinear nodes")


def test_corpus_benchmark_runs_int8_beside_the_ceilings_without_fixed_shapes(int8_package: Path, source: Path) -> None:
    from modelexport_core.bench.corpus import run_corpus_benchmark

    report = run_corpus_benchmark(int8_package, source, int8_dir=int8_package, count=12, warmup=0, repeats=1)
    rows = {row.runner: row for row in report.rows}
    assert list(rows)[-4:] == ["int8_buckets", "raw", "raw_dynamic", "raw_dynamic_int8"]
    assert all(row.seconds > 0 for row in rows.values()) and "sessions" in rows["int8_buckets"].detail
    assert "ceiling without fixed shapes" in rows["raw_dynamic_int8"].detail


def test_corpus_benchmark_refuses_an_int8_directory_without_a_package(
    int8_package: Path, source: Path, tmp_path: Path
) -> None:
    from conftest import assert_user_error, invoke

    run = invoke("benchmark", int8_package, "--source", source, "--corpus", "--int8", tmp_path / "missing")
    assert_user_error(run, "--int8 must be an int8 package directory", "missing")


def _with_outlier_channel(model: onnx.ModelProto, factor: float) -> onnx.NodeProto:
    """`model` with hidden channel 3 of its first LayerNorm `factor` times the others (trained BERTs have such
    channels); that LayerNorm."""
    norm = next(node for node in model.graph.node if node.op_type == "LayerNormalization")
    gamma = next(t for t in model.graph.initializer if t.name == norm.input[1])
    outlier = numpy_helper.to_array(gamma).copy()
    outlier[3] *= factor
    gamma.CopyFrom(numpy_helper.from_array(outlier, gamma.name))
    return norm


def _feeds(count: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"input_ids": rng.integers(5, 90, (2, 16)), "attention_mask": np.ones((2, 16), np.int64),
             "token_type_ids": np.zeros((2, 16), np.int64)} for _ in range(count)]  # fmt: skip


def _int8_error(graph: onnx.ModelProto, exact: np.ndarray, feed: dict[str, np.ndarray]) -> float:
    (quantized,) = first_outputs({"g": quantize_graph(graph, [])}, [("g", feed)])
    return float(np.linalg.norm(quantized - exact) / np.linalg.norm(exact))


def test_smoothing_keeps_the_float_answers_and_brings_an_outlier_channel_within_int8(text_package) -> None:
    model = onnx.load(text_package(TASK, 2) / "model.onnx")
    norm, feeds = _with_outlier_channel(model, 40), _feeds(4)
    chosen = smoothings({"model.onnx": model}, {"model.onnx": feeds})
    assert norm.output[0] in chosen  # the outlier's matmuls are smoothed
    smooth = smoothed(model, chosen)
    muls = [node for node in smooth.graph.node if node.op_type == "Mul" and node.name.endswith("_smoothing")]
    assert len(muls) == len(chosen) and all(MODULE_PATH in node_tags(node) for node in muls)
    (exact,), (same,) = (first_outputs({"g": m}, [("g", feeds[0])]) for m in (model, smooth))
    np.testing.assert_allclose(same, exact, rtol=1e-4, atol=1e-4)
    assert _int8_error(smooth, exact, feeds[0]) < _int8_error(model, exact, feeds[0])


def test_a_channel_towering_over_the_others_is_split_off_and_added_back_in_fp32(text_package) -> None:
    model = onnx.load(text_package(TASK, 2) / "model.onnx")
    norm, feeds = _with_outlier_channel(model, 400), _feeds(4)
    chosen = smoothings({"model.onnx": model}, {"model.onnx": feeds})
    assert chosen[norm.output[0]].outlier == 3
    split = smoothed(model, chosen)
    added = [node for node in split.graph.node if "_outlier" in node.name]
    assert {node.op_type for node in added} == {"Gather", "Mul", "Add"}
    assert all(node_tags(node) for node in added)  # each carries its matmul's module
    (exact,), (same,) = (first_outputs({"g": m}, [("g", feeds[0])]) for m in (model, split))
    np.testing.assert_allclose(same, exact, rtol=1e-4, atol=1e-4)
    only_smoothed = smoothed(model, {norm.output[0]: Smoothing(chosen[norm.output[0]].s)})
    assert _int8_error(split, exact, feeds[0]) < _int8_error(only_smoothed, exact, feeds[0])
