"""Batch-size buckets: one graph per (batch size, length) pair, one text runs on the batch-1 graphs, the answers
stay PyTorch's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from test_text_pipelines import TEXTS, _quiet, assert_close, reference  # noqa: F401  (the PyTorch pipelines)

from modelexport_core import AutoModelForONNX, create_pipeline, export
from modelexport_core.package.layout import io_signature, load_graph

from conftest import assert_user_error, run_modelexport

FILES = {  # file -> (batch size, length)
    "model.onnx": (4, 16),
    "model_b4_seq8.onnx": (4, 8),
    "model_b1_seq16.onnx": (1, 16),
    "model_b1_seq8.onnx": (1, 8),
}


@pytest.fixture(scope="module")
def package(text_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny token classifier, `modelexport export ... --batch-size 1,4 --sequence-length 8,16`."""
    out_dir = tmp_path_factory.mktemp("batch-buckets") / "pkg"
    args = ("--task", "token-classification", "--batch-size", "4,1", "--sequence-length", "16,8")
    run = run_modelexport("export", text_model("token-classification"), out_dir, *args)
    assert run.returncode == 0, run.stderr
    return out_dir


def test_every_pair_is_a_static_graph_sharing_one_weights_file(package: Path) -> None:
    graphs = sorted(name for name in os.listdir(package) if name.endswith(".onnx"))
    assert graphs == sorted(FILES)
    for name, (batch, length) in FILES.items():
        shapes = {i["name"]: i["shape"] for i in io_signature(load_graph(package / name))["inputs"]}
        assert set(map(tuple, shapes.values())) == {(batch, length)}
    metadata = json.loads((package / "export_metadata.json").read_text())
    assert {name: shapes["input_ids"] for name, shapes in metadata["buckets"].items()} == {
        name: list(dims) for name, dims in FILES.items()
    }
    assert metadata["shared_weights"]["shared_bytes"] > 3 * metadata["shared_weights"]["weights_bytes"] // 2
    assert run_modelexport("validate", package).returncode == 0


def test_each_call_runs_on_the_smallest_batch_holding_it(package: Path, reference) -> None:  # noqa: F811
    pipe = create_pipeline("token-classification", package, batch_size=4)
    with _quiet():
        assert_close(pipe(TEXTS[0]), reference("token-classification")(TEXTS[0]))
        assert pipe.model.runs == {1: 1}
        assert_close(pipe(TEXTS[:6]), reference("token-classification")(TEXTS[:6], batch_size=4))
    assert pipe.model.runs == {1: 1, 4: 2}  # 4 rows, then 2 rows padded to 4 (the smallest batch holding 2)


@pytest.mark.parametrize("count", [1, 3, 9])
def test_auto_model_gives_the_pytorch_logits(package: Path, text_model, count: int) -> None:
    from transformers import AutoTokenizer, BertForTokenClassification

    source = text_model("token-classification")
    tokenizer = AutoTokenizer.from_pretrained(source)
    encoded = tokenizer(TEXTS[:count], padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        theirs = BertForTokenClassification.from_pretrained(source).eval()(**encoded).logits
    ours = AutoModelForONNX.from_pretrained(package)(**encoded).logits
    real = encoded["attention_mask"].bool()  # padded positions ran on a shorter bucket: zeros there
    assert ours.shape == theirs.shape and float((ours - theirs)[real].abs().max()) <= 1e-4


def test_bad_batch_sizes_are_one_line_errors(text_model, tmp_path: Path) -> None:
    run = run_modelexport("export", text_model("text-classification"), tmp_path / "bad", "--batch-size", "1,x")
    assert_user_error(run, "--batch-size takes a batch size or a comma-separated list of batch sizes (e.g. 1,8)")
    assert not (tmp_path / "bad").exists()


def test_a_model_with_several_batch_axes_takes_one_batch_size(tmp_path: Path) -> None:
    from tiny_multimodal_models import write_tiny_clip

    clip = write_tiny_clip(tmp_path / "clip")
    with pytest.raises(Exception, match=r"^batch_size takes one size for a model with several batch axes"):
        export(clip, tmp_path / "out", task="zero-shot-image-classification", batch_size=[1, 2])
    assert not (tmp_path / "out").exists()
