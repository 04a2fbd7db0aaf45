"""The qnn-htp target (onnxruntime-qnn's HTP simulator): validate --target, compare --target, refusals."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from modelexport_core.package.hierarchy import MODULE_PATH, node_tags
from modelexport_core.serve.samples import package_inputs
from modelexport_core.targets.compare import compare_on_target
from modelexport_core.targets.registry import get_target, target_session
from modelexport_core.targets.validate import DEFAULT_TOLERANCE, MIN_COSINE, MIN_PSNR_DB, validate_on_target

from conftest import REPO_ROOT, assert_user_error, invoke, run_modelexport

pytest.importorskip(
    "onnxruntime_qnn", reason="needs onnxruntime-qnn: pip install 'modelexport-core[qnn]' (make setup installs it)"
)

TASK = "token-classification"
TEXT = "my name is john and i live in paris"


@pytest.fixture(scope="module")
def package(text_package: Callable[[str, int], Path]) -> Path:
    """The tiny BERT token classifier, fixed at 4 x 16 (shared with the text pipeline tests)."""
    return text_package(TASK, 4)


@pytest.fixture(scope="module")
def qnn_package(text_model: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model exported with `target="qnn-htp"` (the target's graph rewrites applied)."""
    from modelexport_core import export

    out_dir = tmp_path_factory.mktemp("qnn") / f"{TASK}-qnn"
    export(text_model(TASK), out_dir, task=TASK, batch_size=4, sequence_length=16, target="qnn-htp", validate=False)
    return out_dir


def _copy_with(package: Path, destination: Path, change: Callable[[onnx.ModelProto], None]) -> Path:
    """A copy of the package whose model.onnx went through `change`."""
    shutil.copytree(package, destination)
    model_proto = onnx.load(destination / "model.onnx")
    change(model_proto)
    onnx.save(model_proto, destination / "model.onnx")
    return destination


def test_validate_target_passes_a_fixed_shape_export(qnn_package: Path) -> None:
    run = run_modelexport("validate", qnn_package, "--target", "qnn-htp")
    assert run.returncode == 0, run.stdout + run.stderr
    placement = run.stdout.splitlines()[0]
    assert placement.startswith("PASS placement: all ") and placement.endswith(" nodes on QNNExecutionProvider")
    line = next(line for line in run.stdout.splitlines() if line.startswith("PASS deviation logits"))
    assert "max |qnn-htp - cpu| = " in line and f"tolerance {DEFAULT_TOLERANCE:.2%}" in line
    assert run.stdout.rstrip().endswith("runs on qnn-htp")


def test_qnn_export_removes_the_drift_of_broadcast_position_embeddings(package: Path, qnn_package: Path) -> None:
    """Before: every batch row but the first drifts from embeddings.LayerNorm on; after: fp16 rounding only."""
    qnn, both = get_target("qnn-htp"), (package, qnn_package)
    before, after = validate_on_target(package, qnn), validate_on_target(qnn_package, qnn)
    assert not before.fallback and not after.fallback  # both run wholly on QNN: the drift is numeric
    assert before.deviations[0].relative > 0.3 and before.deviations[0].psnr < MIN_PSNR_DB and not before.ok
    assert after.ok and 0 < after.deviations[0].relative < DEFAULT_TOLERANCE and after.nodes > 50
    assert [d.name for d in after.deviations] == ["logits"]
    assert validate_on_target(qnn_package, get_target("cpu")).deviations[0].deviation == 0.0  # cpu against itself
    assert compare_on_target(package, qnn, package_inputs(package)).first_jump == "bert.embeddings.LayerNorm"
    assert json.loads((qnn_package / "export_metadata.json").read_text())["target"] == {
        "name": "qnn-htp",
        "rewrites": {"materialize_broadcasts_into_layernorm": 1, "masked_fills_as_where": 0},
    }
    inputs = package_inputs(package, [TEXT, "hello world", "the quick brown fox"])
    plain, rewritten = (_cpu_logits(p, inputs, onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL) for p in both)
    np.testing.assert_array_equal(rewritten, plain)  # the same arithmetic on the CPU, to the bit
    plain, rewritten = (_cpu_logits(p, inputs, onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL) for p in both)
    # Optimized, onnxruntime fuses the now same-shape Add into SkipLayerNormalization: rounding, nothing more.
    assert np.abs(rewritten - plain).max() <= 1e-5 * np.abs(plain).max()


def _cpu_logits(package: Path, inputs: dict[str, np.ndarray], level: onnxruntime.GraphOptimizationLevel) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = level
    session = onnxruntime.InferenceSession(str(package / "model.onnx"), options, providers=["CPUExecutionProvider"])
    return session.run(None, inputs)[0]


def test_validate_target_fails_beyond_the_tolerance(qnn_package: Path) -> None:
    run = invoke("validate", qnn_package, "--target", "qnn-htp", "--tolerance", "0.00001", "--min-psnr", "200")
    assert run.returncode == 1
    assert "FAIL deviation logits" in run.stdout and "tolerance 0.00%" in run.stdout


def test_validate_target_names_the_nodes_optimums_dynamic_export_leaves_to_the_cpu(optimum_package) -> None:
    run = invoke("validate", optimum_package(TASK, False), "--target", "qnn-htp")
    assert run.returncode == 1, run.stdout
    header, *refused = [line for line in run.stdout.splitlines() if "deviation" not in line][:-1]
    assert header.startswith("FAIL placement: ") and "refused by QNNExecutionProvider" in header
    count, total = (int(word) for word in header.split()[2:5:2])
    assert 0 < count < total and len(refused) == count
    assert "  Shape /bert/Shape" in refused  # untagged: op type and node name (Optimum names nodes by scope)
    assert "runs on qnn-htp" not in run.stdout


def test_validate_target_names_refused_nodes_by_module_path(package: Path, tmp_path: Path) -> None:
    """A tagged package whose dims were made dynamic: every refused node is named by its module path."""

    def make_dynamic(model_proto: onnx.ModelProto) -> None:
        for value in [*model_proto.graph.input, *model_proto.graph.output]:
            for dim, name in zip(value.type.tensor_type.shape.dim, ("batch", "sequence"), strict=False):
                dim.dim_param = name
        del model_proto.graph.value_info[:]

    dynamic = _copy_with(package, tmp_path / "dynamic", make_dynamic)
    report = validate_on_target(dynamic, get_target("qnn-htp"))
    assert not report.ok and report.fallback and report.deviations == []
    tagged = {n.name: node_tags(n)[MODULE_PATH] for n in onnx.load(dynamic / "model.onnx").graph.node}
    for node in report.fallback:
        assert node.module_path == tagged[node.name.split("/")[0]]
    run = invoke("validate", dynamic, "--target", "qnn-htp")
    assert run.returncode == 1
    assert "  Gather bert.embeddings.word_embeddings" in run.stdout.splitlines()
    assert "  LayerNormalization bert.embeddings.LayerNorm" in run.stdout.splitlines()


def test_validate_target_refuses_dynamic_int8_in_one_line(package: Path, tmp_path: Path) -> None:
    from onnxruntime.quantization import quantize_dynamic

    quantized = tmp_path / "int8"
    shutil.copytree(package, quantized)
    quantize_dynamic(package / "model.onnx", quantized / "model.onnx")
    ops = {node.op_type for node in onnx.load(quantized / "model.onnx").graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    line = assert_user_error(
        run_modelexport("validate", quantized, "--target", "qnn-htp"),
        "dynamic int8 quantization",
        "a CPU-only feature that QNN refuses",
        "export with --quantize w8a16 or w8a8 for NPUs",
    )
    assert line.startswith("Error: int8 holds DynamicQuantizeLinear nodes")


def test_validate_target_unknown_says_which_exist(package: Path) -> None:
    """(Without onnxruntime-qnn, qnn-htp names its extra: tests/test_wheels.py, in a venv without it.)"""
    assert_user_error(invoke("validate", package, "--target", "npu"), "Unknown target 'npu'", "cpu, qnn-htp")


def test_onnxruntime_qnn_keeps_the_pinned_onnxruntime() -> None:
    from importlib.metadata import version

    pins = dict(line.split("==") for line in (REPO_ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    assert version("onnxruntime") == pins["onnxruntime"] and version("onnxruntime-qnn") == pins["onnxruntime-qnn"]


def test_compare_prints_the_module_tree_with_deviations(qnn_package: Path) -> None:
    run = invoke("compare", qnn_package, "--target", "qnn-htp", "--text", TEXT)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("(root)  max |Δ| ")
    for module in ("bert", "embeddings", "word_embeddings", "encoder", "attention", "LayerNorm", "classifier"):
        assert any(line.lstrip("│├└─ ").startswith(f"{module}  max |Δ| ") for line in lines), module
    assert lines[-1].startswith("No module's deviation jumps") or lines[-1].startswith("First jump: ")


def test_compare_json_in_a_subprocess_is_clean_json(qnn_package: Path) -> None:
    """The QNN libraries print to the process's stdout themselves: --json output must stay parseable."""
    run = run_modelexport("compare", qnn_package, "--target", "qnn-htp", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert (data["target"], data["reference"]) == ("qnn-htp", "cpu")
    root = data["tree"]
    assert root["path"] == "" and root["outputs"] == ["logits"]

    def walk(node: dict) -> list[dict]:
        return [node, *(n for child in node["children"] for n in walk(child))]

    modules = {node["path"]: node for node in walk(root)}
    assert {"bert.embeddings", "bert.encoder.layer.1.output.LayerNorm", "classifier"} <= set(modules)
    assert all(node["deviation"] >= 0 and node["outputs"] for node in modules.values())
    assert modules["classifier"]["deviation"] == root["deviation"]  # the classifier hands over the logits


def test_compare_marks_the_module_where_fp16_overflows(qnn_package: Path, tmp_path: Path) -> None:
    """Weights of one Linear scaled so its outputs exceed fp16's 65504: the HTP saturates there, the CPU does not."""
    culprit = "bert.encoder.layer.1.intermediate.dense"

    def scale_culprit(model_proto: onnx.ModelProto) -> None:
        initializers = {i.name: i for i in model_proto.graph.initializer}
        node = next(n for n in model_proto.graph.node if node_tags(n)[MODULE_PATH] == culprit and n.op_type == "MatMul")
        weight = initializers[node.input[1]]
        weight.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(weight) * np.float32(1e5), weight.name))

    overflowing = _copy_with(qnn_package, tmp_path / "overflow", scale_culprit)
    comparison = compare_on_target(overflowing, get_target("qnn-htp"), package_inputs(overflowing, [TEXT]))
    assert comparison.first_jump == culprit
    healthy = compare_on_target(qnn_package, get_target("qnn-htp"), package_inputs(qnn_package, [TEXT]))
    assert healthy.first_jump != culprit
    run = invoke("compare", overflowing, "--target", "qnn-htp", "--text", TEXT)
    assert f"First jump: {culprit}" in run.stdout
    assert any(line.endswith("<- first jump") and "dense" in line for line in run.stdout.splitlines())


def test_qnn_rewrite_expands_a_computed_broadcast_operand() -> None:
    """Position embeddings gathered at run time (all-MiniLM-L6-v2's export), not folded into a constant."""
    from onnx import TensorProto, helper, numpy_helper

    from modelexport_core.targets.qnn.rewrites import materialize_broadcasts_into_layernorm

    rng = np.random.default_rng(0)
    constants = {
        "table": rng.standard_normal((64, 32)),
        "positions": np.arange(16)[None],
        "scale": np.ones(32),
        "bias": np.zeros(32),
    }
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "positions"], ["position_embeddings"], name="gather"),
            helper.make_node("Add", ["x", "position_embeddings"], ["sum"], name="add"),
            helper.make_node("LayerNormalization", ["sum", "scale", "bias"], ["y"], name="norm", epsilon=1e-12),
        ],
        "embeddings",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16, 32])],
        [
            numpy_helper.from_array(v.astype(np.int64 if k == "positions" else np.float32), k)
            for k, v in constants.items()
        ],
    )
    model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    inputs = {"x": rng.standard_normal((4, 16, 32)).astype(np.float32)}

    def deviation() -> float:
        serialized = model_proto.SerializeToString()
        on_qnn, on_cpu = (target_session(serialized, get_target(t)).run(None, inputs)[0] for t in ("qnn-htp", "cpu"))
        return float(np.abs(on_qnn - on_cpu).max())

    assert deviation() > 0.5  # batch rows 1-3 are wrong
    assert materialize_broadcasts_into_layernorm(model_proto) == 1
    assert [node.op_type for node in model_proto.graph.node] == ["Gather", "Expand", "Add", "LayerNormalization"]
    onnx.checker.check_model(model_proto)
    assert deviation() < 0.01  # fp16 rounding of values of about 1


def test_validate_target_checks_every_shape_bucket(text_model: Callable[[str], Path], tmp_path: Path) -> None:
    """A bucketed qnn-htp export passes graph by graph; a bucket made dynamic fails on its own."""
    from modelexport_core import export

    bucketed = tmp_path / "bucketed"
    export(
        text_model(TASK), bucketed, task=TASK, batch_size=2, sequence_length=[8, 16], target="qnn-htp", validate=False
    )
    run = invoke("validate", bucketed, "--target", "qnn-htp")
    assert run.returncode == 0, run.stdout
    lines = run.stdout.splitlines()
    assert [line for line in lines if line.endswith(".onnx")] == ["model.onnx", "model_seq8.onnx"]
    assert sum(line.startswith("PASS placement: all ") for line in lines) == 2
    assert sum(line.startswith("PASS deviation logits") for line in lines) == 2

    bucket = onnx.load(bucketed / "model_seq8.onnx", load_external_data=False)  # the weights stay shared
    bucket.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.save(bucket, bucketed / "model_seq8.onnx")
    report = validate_on_target(bucketed, get_target("qnn-htp"), graph="model_seq8.onnx")
    assert report.graph == "model_seq8.onnx" and not report.ok
    assert "Gather bert.embeddings.word_embeddings" in [node.describe() for node in report.fallback]


def test_qnn_rewrite_turns_a_masked_fill_into_where() -> None:
    """`x[mask] = 0` as PyTorch exports it (Wav2Vec2's padded frames): NonZero is refused; Where runs on QNN."""
    from onnx import TensorProto, helper, numpy_helper

    from modelexport_core.targets.qnn.rewrites import masked_fills_as_where

    shape = [2, 8, 4]
    constants = {"zero": np.zeros((), np.float32), "flat": np.array([-1], np.int64)}
    graph = helper.make_graph(
        [
            helper.make_node("NonZero", ["mask"], ["indices_t"], name="nonzero"),
            helper.make_node("Transpose", ["indices_t"], ["indices"], name="transpose", perm=[1, 0]),
            helper.make_node("Cast", ["mask"], ["mask_int"], name="cast", to=TensorProto.INT64),
            helper.make_node("ReduceSum", ["mask_int"], ["count"], name="count", keepdims=1),
            helper.make_node("Reshape", ["count", "flat"], ["size"], name="size"),
            helper.make_node("Expand", ["zero", "size"], ["zeros"], name="expand"),
            helper.make_node("Reshape", ["zeros", "flat"], ["updates"], name="reshape"),
            helper.make_node("ScatterND", ["x", "indices", "updates"], ["y"], name="index_put"),
        ],
        "masked_fill",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(v, k) for k, v in constants.items()],
    )
    model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    rng = np.random.default_rng(0)
    inputs = {"x": rng.standard_normal(shape).astype(np.float32), "mask": rng.random(shape) < 0.5}

    def run(target: str) -> np.ndarray:
        return target_session(model_proto.SerializeToString(), get_target(target)).run(None, inputs)[0]

    on_cpu = run("cpu")
    with pytest.raises(Exception, match="fallback"):  # NonZero's output size depends on the data
        run("qnn-htp")

    assert masked_fills_as_where(model_proto) == 1
    assert [node.op_type for node in model_proto.graph.node] == ["Where"]
    onnx.checker.check_model(model_proto)
    np.testing.assert_array_equal(run("cpu"), on_cpu)
    on_qnn = run("qnn-htp")
    np.testing.assert_allclose(on_qnn, on_cpu, atol=1e-2)


def test_validate_target_passes_small_logits_rounded_by_fp16(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """A classifier whose logits (~0.01) are small beside the hidden states their fp16 rounding comes from: the
    deviation relative to their peak exceeds the tolerance, yet PSNR and cosine show the output intact."""
    from modelexport_core import export

    out_dir = tmp_path / "small-logits"
    export(tiny_bert_dir, out_dir, task="text-classification", sequence_length=32, target="qnn-htp", validate=False)
    (logits,) = validate_on_target(out_dir, get_target("qnn-htp")).deviations
    assert logits.relative > DEFAULT_TOLERANCE and logits.within(DEFAULT_TOLERANCE)
    assert logits.psnr >= MIN_PSNR_DB and logits.cosine >= MIN_COSINE
    run = run_modelexport("validate", out_dir, "--target", "qnn-htp")
    assert run.returncode == 0 and "PSNR" in run.stdout and "cosine" in run.stdout, run.stdout
