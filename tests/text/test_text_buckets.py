"""Shape buckets: one fixed-shape graph per sequence length, one shared weights file, PyTorch's answers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper, numpy_helper
from test_text_pipelines import (  # noqa: F401  (reference: the PyTorch pipelines fixture)
    CONTEXT,
    LONG_CONTEXT,
    QA_STRIDE,
    QUESTIONS,
    SHORT_QUESTIONS,
    TEXTS,
    _quiet,
    assert_close,
    reference,
)

from modelexport_core import create_pipeline, detect_shapes, export
from modelexport_core.package.buckets import KEY_BUCKETS, parse_sizes
from modelexport_core.package.hierarchy import MODULE_PATH, iter_nodes, node_tags
from modelexport_core.package.layout import io_signature, load_graph, model_metadata
from modelexport_core.package.shared_weights import WEIGHTS_FILE, save_sharing_weights

from conftest import TEXT_SEQUENCE_LENGTH, run_modelexport

LENGTHS = [8, TEXT_SEQUENCE_LENGTH]
BUCKET_FILES = {8: "model_seq8.onnx", TEXT_SEQUENCE_LENGTH: "model.onnx"}


@pytest.fixture(scope="module")
def bucketed(text_model: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: task -> its tiny model exported at batch 2 and sequence lengths 8 and 16, once."""
    exported: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in exported:
            out_dir = tmp_path_factory.mktemp("bucketed") / task
            export(text_model(task), out_dir, task=task, batch_size=2, sequence_length=LENGTHS, validate=False)
            exported[task] = out_dir
        return exported[task]

    return get


def test_each_bucket_is_a_static_tagged_graph_listed_in_the_metadata(bucketed, text_package) -> None:
    package = bucketed("token-classification")
    metadata = json.loads((package / "export_metadata.json").read_text())
    assert {name: shapes["input_ids"] for name, shapes in metadata["buckets"].items()} == {
        file: [2, length] for length, file in BUCKET_FILES.items()
    }
    assert json.loads(model_metadata(load_graph(package / "model.onnx"))[KEY_BUCKETS]) == metadata["buckets"]
    assert metadata["shapes"]["input_ids"] == [2, TEXT_SEQUENCE_LENGTH]  # model.onnx is the largest
    for length, file in BUCKET_FILES.items():
        graph = load_graph(package / file)
        signature = io_signature(graph)
        assert all(None not in v["shape"] for v in signature["inputs"] + signature["outputs"])
        assert signature["outputs"][0]["shape"][:2] == [2, length]
        assert all(MODULE_PATH in node_tags(node) for node in iter_nodes(graph.graph))
    recorded = {entry["path"] for entry in metadata["files"]}
    assert {WEIGHTS_FILE, *BUCKET_FILES.values()} <= recorded


def test_buckets_store_each_weight_once(bucketed, text_package) -> None:
    """The shared weights file holds about one copy of the weights of the single-length export."""
    single = onnx.load(text_package("token-classification", 2) / "model.onnx")
    weights = sum(len(t.raw_data) for t in single.graph.initializer if len(t.raw_data) >= 1024)
    stored = (bucketed("token-classification") / WEIGHTS_FILE).stat().st_size
    assert weights <= stored < 1.1 * weights


def test_weights_are_shared_by_content_not_by_name(tmp_path: Path) -> None:
    """Two graphs: one name with different contents, and two names with one content."""
    first, second = np.arange(512, dtype=np.float32), np.full(512, 2.0, dtype=np.float32)

    def model(values: dict[str, np.ndarray]) -> onnx.ModelProto:
        names = list(values)
        nodes = [helper.make_node("Add", ["x", names[0]], ["y0"]), helper.make_node("Add", ["y0", names[-1]], ["y"])]
        graph = helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [512])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [512])],
            [numpy_helper.from_array(array, name) for name, array in values.items()],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])

    models = {"a.onnx": model({"w": first, "v": second}), "b.onnx": model({"w": second, "u": second})}
    stats = save_sharing_weights(models, tmp_path)
    assert stats == {"weights_bytes": 2 * 2048 + 0, "shared_bytes": 2 * 2048}
    x = np.ones(512, dtype=np.float32)
    for name, expected in (("a.onnx", x + first + second), ("b.onnx", x + second + second)):
        session = onnxruntime.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], expected)


def test_shape_detection_reports_the_buckets(bucketed) -> None:
    detected = detect_shapes(bucketed("token-classification"))
    assert detected.shapes == {"batch_size": 2, "sequence_length": TEXT_SEQUENCE_LENGTH}
    assert {dims["sequence_length"]: file for file, dims in detected.buckets.items()} == BUCKET_FILES


def test_optimum_loads_the_bucketed_package_unchanged(bucketed) -> None:
    from optimum.onnxruntime import ORTModelForTokenClassification

    model = ORTModelForTokenClassification.from_pretrained(bucketed("token-classification"))
    assert [i.shape for i in model.session.get_inputs()] == [[2, TEXT_SEQUENCE_LENGTH]] * 3


# Per task: the call, on ours and on the PyTorch reference (which pads to the longest input, truncating at 16).
CALLS: dict[str, Callable] = {
    "token-classification": lambda pipe: pipe(TEXTS, aggregation_strategy="simple"),
    "question-answering": lambda pipe: [
        pipe(question=QUESTIONS, context=[CONTEXT] * 4, top_k=3, **QA_STRIDE),
        pipe(question=SHORT_QUESTIONS, context=[LONG_CONTEXT] * 4, top_k=5, max_seq_len=16, doc_stride=8),
        pipe(question=["who?", "where?"], context=["john.", "paris"], top_k=2),
    ],
    "feature-extraction": lambda pipe: [pipe(text) for text in TEXTS[:8]] + [pipe(TEXTS[8:])],
}


@pytest.mark.parametrize("task", list(CALLS))
def test_bucketed_pipeline_matches_pytorch(bucketed, reference, task: str) -> None:  # noqa: F811
    """Answers equal PyTorch's; short batches ran on the small buckets, long ones on model.onnx."""
    pipe = create_pipeline(task, bucketed(task), batch_size=2)
    with _quiet():
        mine, ref = CALLS[task](pipe), CALLS[task](reference(task))
    assert_close(mine, ref)
    runs = pipe.model.model.runs
    assert runs[TEXT_SEQUENCE_LENGTH] and runs[8], runs


def test_bucketed_pipeline_pads_each_call_to_its_bucket(bucketed) -> None:
    """The pipeline's tokenizer pads a short text to the small bucket, not to the fixed length, and a long one
    to the fixed length; a stride leaves room in the bucket it picks."""
    pipe = create_pipeline("feature-extraction", bucketed("feature-extraction"), batch_size=2)
    assert len(pipe.tokenizer("hello world")["input_ids"]) == 8
    assert len(pipe.tokenizer(" ".join(["word"] * 12))["input_ids"]) == TEXT_SEQUENCE_LENGTH
    with _quiet():
        strided = pipe.tokenizer("who?", "john.", stride=6, truncation="only_second", return_overflowing_tokens=True)
    assert len(strided["input_ids"][0]) == TEXT_SEQUENCE_LENGTH  # 8 tokens leave no room for a stride of 6
    assert len(pipe("hello world")[0]) == sum(pipe.tokenizer("hello world")["attention_mask"])
    assert pipe.model.model.runs == {8: 1}


def test_calls_are_sorted_by_tokens_not_characters(tiny_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    from modelexport_core.serve.sorting import length_order
    from modelexport_text import TextModality

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    texts = ["berlin london paris", "q w e r t y"]  # 19 characters but 3 words; 11 characters but 6 letters
    assert length_order([len(text) for text in texts], 2) == [1, 0]
    assert length_order(TextModality().input_lengths(texts, tokenizer), 2) == [0, 1]
    assert TextModality().input_lengths([texts[0], {"question": "q", "context": "c"}], tokenizer) is None


def test_cli_takes_a_list_of_lengths_and_refuses_a_bad_one(text_model, tmp_path: Path) -> None:
    assert parse_sizes("128,16,64,16", "--sequence-length") == [16, 64, 128]
    run = run_modelexport("export", text_model("text-classification"), tmp_path / "bad", "--sequence-length", "8,x")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.user_error_lines() == [
        "Error: --sequence-length takes a length or a comma-separated list of lengths (e.g. 16,32,64,128), not '8,x'"
    ]
    assert not (tmp_path / "bad").exists()


def test_benchmark_corpus_reports_every_runner_side_by_side(bucketed, text_model) -> None:
    from rich.console import Console

    from modelexport_core.bench.corpus import print_corpus_report, run_corpus_benchmark

    task = "feature-extraction"
    report = run_corpus_benchmark(bucketed(task), text_model(task), count=12, warmup=0, repeats=1)
    shown = report.to_dict()
    assert (shown["count"], shown["batch_size"], shown["threads"]) == (12, 2, 1)
    rows = {row["runner"]: row for row in shown["rows"]}
    assert list(rows) == [
        "pytorch",
        "optimum",
        "fp32_single",
        "fp32_buckets_unsorted",
        "fp32_buckets",
        "raw",
        "raw_dynamic",
    ]
    assert rows["pytorch"]["x_pytorch"] == 1.0 and all(row["seconds"] > 0 for row in rows.values())
    assert rows["raw_dynamic"]["x_ceiling"] == 1.0 and shown["cpu"]  # each row against its precision's ceiling
    assert rows["fp32_buckets"]["x_ceiling"] == round(
        rows["raw_dynamic"]["seconds"] / rows["fp32_buckets"]["seconds"], 3
    )
    assert re.fullmatch(r"batches per length \{(8: \d+, )?16: \d+\}, [12] sessions", rows["fp32_buckets"]["detail"])
    assert rows["fp32_single"]["detail"] == "" and shown["package_mb"]["fp32"] > 0
    console = Console(record=True, width=120)
    print_corpus_report(report, console)
    table = console.export_text()
    assert all(
        label in table
        for label in (
            "PyTorch pipeline",
            "Optimum, dynamic axes",
            "ours fp32 buckets",
            "x PyTorch",
            "x ceiling",
            "CPU: ",
        )
    )
