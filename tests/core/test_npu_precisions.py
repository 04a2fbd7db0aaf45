"""NPU precisions on tiny models: w8a16 and w8a8 (static QDQ) and fp16 packages export behind the gate on inputs
held out from calibration, keep every node tagged, run wholly on the HTP simulator, and serve there through
create_pipeline(target="qnn-htp")."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from modelexport_core import (
    ModelExportError,
    create_pipeline,
    export,
    get_target,
    validate_every_graph_on_target,
    validate_optimum_compatibility,
)
from modelexport_core.package.hierarchy import MODULE_PATH, iter_nodes, node_tags
from modelexport_core.quantize.gate import CALIBRATION_SIZE
from modelexport_text.corpus import corpus_sentences

from conftest import assert_user_error, invoke
from tiny_models import write_tiny_text_model

TASK = "text-classification"
TEXTS = ["my name is john and i live in paris", "hello world", "the quick brown fox jumps over the lazy dog"]

needs_qnn = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime_qnn") is None,
    reason="needs onnxruntime-qnn: pip install 'modelexport-core[qnn]' (make setup installs it)",
)


@pytest.fixture(scope="module")
def exported(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The tiny BERT classifier at [1, 16] and [1, 32] (two buckets) for the qnn-htp target, at a precision."""
    packages: dict[str, Path] = {}

    def get(precision: str) -> Path:
        if precision not in packages:
            out_dir = tmp_path_factory.mktemp("npu") / precision
            options = {"dtype": "fp16"} if precision == "fp16" else {"quantize": precision}
            export(tiny_bert_dir, out_dir, task=TASK, sequence_length=[16, 32], target="qnn-htp", **options)
            packages[precision] = out_dir
        return packages[precision]

    return get


def _graphs(package: Path) -> list[onnx.ModelProto]:
    return [onnx.load(package / name, load_external_data=False) for name in ("model.onnx", "model_seq16.onnx")]


@pytest.mark.parametrize("precision", ["w8a16", "w8a8", "fp16"])
def test_the_gate_is_recorded_with_its_held_out_inputs_and_every_node_is_tagged(exported, precision: str) -> None:
    report = json.loads((exported(precision) / "export_metadata.json").read_text())["quantization"]
    assert report["precision"] == precision and report["metric"] == "top1_agreement"
    assert report["value"] >= report["min_agreement"] == 0.99
    assert report["inputs"] == 1 + len(corpus_sentences()) - CALIBRATION_SIZE  # the calibration set held out
    assert report["calibration_inputs"] == (0 if precision == "fp16" else CALIBRATION_SIZE)
    for graph in _graphs(exported(precision)):
        nodes = list(iter_nodes(graph.graph))
        assert all(MODULE_PATH in node_tags(node) for node in nodes)
        ops = {node.op_type for node in nodes}
        if precision == "fp16":
            assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer)
        else:
            assert {"QuantizeLinear", "DequantizeLinear", "Gelu"} <= ops and "Erf" not in ops
            assert report["prepared"] == {"fused_gelu": 2, "extreme_fills": 1}
            types = {t.data_type for t in graph.graph.initializer}
            assert onnx.TensorProto.UINT8 in types  # the weights
            assert (onnx.TensorProto.UINT16 in types) == (precision == "w8a16")  # the activations' zero points


@needs_qnn
@pytest.mark.parametrize("precision", ["w8a16", "w8a8", "fp16"])
def test_every_node_of_every_bucket_runs_on_the_htp(exported, precision: str) -> None:
    reports = validate_every_graph_on_target(exported(precision), get_target("qnn-htp"))
    assert [r.graph for r in reports] == ["model.onnx", "model_seq16.onnx"]
    assert all(r.ok and not r.fallback for r in reports), [(r.fallback, r.deviations) for r in reports]


@needs_qnn
def test_the_standard_pipeline_runs_on_the_htp(exported) -> None:
    package = exported("w8a16")
    on_cpu = create_pipeline(TASK, package)(TEXTS)
    on_htp = create_pipeline(TASK, package, target="qnn-htp")(TEXTS)
    assert [a["label"] for a in on_htp] == [a["label"] for a in on_cpu]
    assert [a["score"] for a in on_htp] == pytest.approx([a["score"] for a in on_cpu], abs=1e-3)


def test_a_gate_that_cannot_pass_names_the_precision_and_leaves_nothing(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """Embeddings are judged by their worst cosine, which 8-bit activations never bring to exactly 1."""
    source = write_tiny_text_model(tmp_path / "tiny-bert", "feature-extraction")
    with pytest.raises(ModelExportError) as caught:
        export(source, tmp_path / "out", sequence_length=16, quantize="w8a8", min_agreement=1.0, validate=False)
    message = str(caught.value)
    assert message.startswith("w8a8 cosine 0.") and "modules kept at 16-bit weights" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (("--quantize", "w4a16"), "--quantize takes int8, w8a16, w8a8 (fp16 is --dtype fp16), not 'w4a16'"),
        (("--dtype", "bf16"), "--dtype takes fp32 or fp16, not 'bf16'"),
        (("--dtype", "fp16", "--quantize", "w8a16"), "--dtype fp16 and --quantize exclude each other"),
        (("--quantize", "w8a16", "--target", "nope"), "Unknown target 'nope'"),
    ],
)
def test_precision_options_refused_in_one_line(tiny_bert_dir: Path, tmp_path: Path, options, says: str) -> None:
    assert_user_error(invoke("export", tiny_bert_dir, tmp_path / "out", *options), says)
    assert not (tmp_path / "out").exists()


def test_an_unknown_target_for_the_pipeline_is_a_user_error(exported) -> None:
    with pytest.raises(ModelExportError, match=r"^Unknown target 'nope': choose one of cpu, qnn-htp"):
        create_pipeline(TASK, exported("w8a16"), target="nope")


@needs_qnn
def test_validate_target_reports_the_agreement_with_fp32_recorded_at_export(exported) -> None:
    run = invoke("validate", exported("w8a8"), "--target", "qnn-htp")
    assert run.returncode == 0, run.stdout
    assert run.stdout.splitlines()[-1].startswith("agreement with fp32 at export: w8a8 top1_agreement ")


@needs_qnn
def test_benchmark_runs_our_pipeline_and_the_raw_session_on_the_target(exported, tiny_bert_dir: Path) -> None:
    from modelexport_core.bench.benchmark import run_benchmark

    rows = run_benchmark(exported("w8a16"), tiny_bert_dir, count=2, warmup=0, repeats=1, target="qnn-htp")
    assert rows and all(row.seconds["modelexport"] > 0 and row.seconds["onnxruntime"] > 0 for row in rows)


@needs_qnn
def test_a_compiled_package_serves_on_the_htp_and_a_tampered_context_fails_validate(exported, tmp_path: Path) -> None:
    package = shutil.copytree(exported("w8a16"), tmp_path / "compiled")
    run = invoke("compile", package, "--target", "qnn-htp")
    assert run.returncode == 0, run.stdout + run.stderr
    listed = json.loads((package / "export_metadata.json").read_text())["compiled"]["qnn-htp"]
    assert sorted(listed) == [f"compiled/qnn-htp/{stem}_ctx{end}" for stem in ("model", "model_seq16")
                              for end in (".onnx", "_qnn.bin")]  # fmt: skip
    assert validate_optimum_compatibility(package).ok
    loaded = create_pipeline(TASK, package, target="qnn-htp")
    assert str(loaded.model.model.model.path).endswith("compiled/qnn-htp/model_ctx.onnx")  # adapter -> ORTModel
    assert loaded(TEXTS) == create_pipeline(TASK, exported("w8a16"), target="qnn-htp")(TEXTS)
    with (package / "compiled/qnn-htp/model_ctx_qnn.bin").open("ab") as binary:
        binary.write(b"\0")
    report = validate_optimum_compatibility(package)
    assert report.first_failure() == "files: compiled/qnn-htp/model_ctx_qnn.bin does not match its recorded sha256"
    assert_user_error(invoke("compile", package, "--target", "qnn-htp"), "is not compiled: compiled/qnn-htp/")


def test_the_cpu_has_nothing_to_compile(exported) -> None:
    assert_user_error(invoke("compile", exported("w8a16"), "--target", "cpu"), "cpu target has nothing to compile")
