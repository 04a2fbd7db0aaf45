"""Sentence embeddings: a sentence-transformers model's pooling and normalization recorded at export, one vector
per text equal to the PyTorch model's; and a list of texts run batch by batch with the per-item path's answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modelexport_core import ModelExportError, create_pipeline, export
from modelexport_core.package.layout import load_graph, model_metadata
from modelexport_core.package.single_file import KEY_EMBEDDED_FILES

from conftest import run_modelexport

WORDS = ["my", "name", "is", "john", "and", "i", "live", "in", "paris", "the", "quick", "brown", "fox"]
TEXTS = [" ".join(WORDS[: 2 + (3 * i) % 12]) for i in range(9)]
MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]


@pytest.fixture(scope="module")
def sentence_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT as a sentence-transformers directory: mean pooling, then Normalize."""
    from tiny_models import write_spread_text_model

    source = write_spread_text_model(tmp_path_factory.mktemp("st") / "model", "feature-extraction")
    (source / "modules.json").write_text(json.dumps(MODULES))
    (source / "1_Pooling").mkdir()
    (source / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    return source


@pytest.fixture(scope="module")
def package(sentence_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("st-package") / "pkg"
    export(sentence_model, out_dir, task="feature-extraction", batch_size=4, sequence_length=[8, 16])
    return out_dir


def _pytorch(source: Path, texts: list[str], pooling: str = "mean", normalize: bool = True) -> np.ndarray:
    """What sentence-transformers computes: the model's token vectors pooled over the real tokens."""
    from transformers import AutoModel, AutoTokenizer

    encoded = AutoTokenizer.from_pretrained(source)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        tokens = AutoModel.from_pretrained(source).eval()(**encoded).last_hidden_state
    real = encoded["attention_mask"].unsqueeze(-1).float()
    if pooling == "cls":
        vectors = tokens[:, 0]
    elif pooling == "max":
        vectors = tokens.masked_fill(real == 0, float("-inf")).max(dim=1).values
    else:
        vectors = (tokens * real).sum(1) / real.sum(1)
    return (torch.nn.functional.normalize(vectors, dim=-1) if normalize else vectors).numpy()


def test_the_export_records_the_pooling_its_modules_ask_for(package: Path) -> None:
    assert json.loads((package / "sentence_embedding.json").read_text()) == {"pooling": "mean", "normalize": True}
    embedded = json.loads(model_metadata(load_graph(package / "model.onnx"))[KEY_EMBEDDED_FILES])
    assert "sentence_embedding.json" in embedded  # a lone model.onnx pools the same way


def test_one_vector_per_text_equals_the_pytorch_models(package: Path, sentence_model: Path) -> None:
    pipe = create_pipeline("sentence-embeddings", package)
    expected = _pytorch(sentence_model, TEXTS)
    vectors = np.asarray(pipe(TEXTS, batch_size=4))
    assert vectors.shape == expected.shape == (len(TEXTS), 32)
    assert float((vectors * expected).sum(1).min()) >= 0.9999 and np.allclose(vectors, expected, atol=1e-5)
    assert np.allclose(pipe(TEXTS[3]), expected[3], atol=1e-5)  # one text, the per-item path


@pytest.mark.parametrize(("pooling", "normalize"), [("cls", False), ("max", True), ("mean", False)])
def test_pooling_and_normalize_override_the_recorded_ones(package, sentence_model, pooling, normalize) -> None:
    expected = _pytorch(sentence_model, TEXTS, pooling, normalize)
    created = create_pipeline("sentence-embeddings", package, pooling=pooling, normalize=normalize)
    assert np.allclose(created(TEXTS, batch_size=4), expected, atol=1e-5)
    per_call = create_pipeline("feature-extraction", package)(TEXTS, pooling=pooling, normalize=normalize)
    assert np.allclose(per_call, expected, atol=1e-5)


def test_a_pooling_users_do_not_have_is_a_user_error(package: Path) -> None:
    with pytest.raises(ModelExportError, match=r"^pooling takes mean, cls, max, not 'sum'$"):
        create_pipeline("sentence-embeddings", package, pooling="sum")


def test_batched_feature_extraction_gives_the_per_item_answers(package: Path) -> None:
    pipe = create_pipeline("feature-extraction", package)
    batched, one_by_one = pipe(TEXTS, batch_size=4), [pipe(text) for text in TEXTS]
    assert [np.shape(vectors) for vectors in batched] == [np.shape(vectors) for vectors in one_by_one]
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(batched, one_by_one, strict=True))


def test_a_list_is_tokenized_in_one_call_whatever_its_batches(package: Path, monkeypatch) -> None:
    """One tokenizer call measures the texts of a list to sort them and serves every batch."""
    pipe = create_pipeline("sentence-embeddings", package)
    wrapped, calls = pipe.tokenizer.wrapped, []
    encode = wrapped._batch_encode_plus
    monkeypatch.setattr(wrapped, "_batch_encode_plus", lambda *a, **k: calls.append(k) or encode(*a, **k))
    vectors = pipe(TEXTS, batch_size=2)
    assert [len(call["batch_text_or_text_pairs"]) for call in calls] == [len(TEXTS)]
    assert len(vectors) == len(TEXTS)


def test_run_writes_the_sentence_vectors(package: Path, sentence_model: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": text}) + "\n" for text in TEXTS))
    run = run_modelexport("run", package, source, tmp_path / "out.jsonl", "--task", "sentence-embeddings")
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert np.allclose([row["embedding"] for row in rows], _pytorch(sentence_model, TEXTS), atol=1e-5)


def test_the_benchmark_baselines_give_the_pytorch_models_vectors(sentence_model: Path, tmp_path: Path) -> None:
    """The corpus benchmark's PyTorch row (transformers' pipeline() on the PyTorch model, pooling as its
    modules.json asks) and its Optimum row (the same class over Optimum's dynamic export) compute what ours does."""
    from transformers import AutoTokenizer

    from modelexport_core.bench.runners import optimum_baseline, optimum_dynamic_export, plugin_task, pytorch_baseline
    from modelexport_core.plugins.manager import get_modality

    task, expected, text = "sentence-embeddings", _pytorch(sentence_model, TEXTS), get_modality("text")
    plugin = plugin_task(task, text)
    assert np.allclose(pytorch_baseline(task, sentence_model, plugin)(TEXTS, batch_size=4), expected, atol=1e-5)
    dynamic = optimum_dynamic_export(sentence_model, task, tmp_path / "dynamic", text)
    optimum = optimum_baseline(task, dynamic, AutoTokenizer.from_pretrained(sentence_model), 1, plugin)
    assert np.allclose(optimum(TEXTS, batch_size=4), expected, atol=1e-5)
