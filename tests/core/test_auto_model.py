"""AutoModelForONNX: a package as the model its task names, fed any batch size and any length its buckets allow,
gives the PyTorch model's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modelexport_core import AutoModelForONNX, ModelExportError, export

TEXT_TASKS = ["text-classification", "token-classification", "question-answering", "fill-mask", "feature-extraction"]
WORDS = ["my", "name", "is", "john", "and", "i", "live", "in", "paris", "the", "quick", "brown", "fox"]


def _texts(count: int) -> list[str]:
    return [" ".join(WORDS[: 2 + (3 * i) % 10]) for i in range(count)]


def _pytorch(task: str, model_dir: Path):
    from optimum.exporters.tasks import TasksManager

    from modelexport_core.exporter.tasks import export_task_for

    model_class = TasksManager.get_model_class_for_task(export_task_for(task), framework="pt", library="transformers")
    return model_class.from_pretrained(model_dir).eval()


@pytest.mark.parametrize("task", TEXT_TASKS)
@pytest.mark.parametrize("count", [1, 3, 9])
def test_any_batch_and_length_give_the_pytorch_outputs(text_model, text_package, task: str, count: int) -> None:
    from transformers import AutoTokenizer

    model = AutoModelForONNX.from_pretrained(text_package(task, 2))
    encoded = AutoTokenizer.from_pretrained(text_model(task))(_texts(count), padding=True, return_tensors="pt")
    ours = model(**encoded)
    with torch.no_grad():
        theirs = _pytorch(task, text_model(task))(**encoded)
    names = [name for name in ours if ours[name] is not None]
    assert names and all(ours[name].shape == theirs[name].shape for name in names)
    assert max(float((ours[name] - theirs[name]).abs().max()) for name in names) <= 1e-4


def test_buckets_serve_each_length(text_model, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    task = "token-classification"
    export(text_model(task), tmp_path / "b", task=task, sequence_length=[8, 16], validate=False)
    model = AutoModelForONNX.from_pretrained(tmp_path / "b")
    tokenizer = AutoTokenizer.from_pretrained(text_model(task))
    for texts in (["hi"], _texts(5)):
        encoded = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            theirs = _pytorch(task, text_model(task))(**encoded).logits
        real = encoded["attention_mask"].bool()  # a row's padded positions ran on a shorter bucket: zeros there
        assert float((model(**encoded).logits - theirs)[real].abs().max()) <= 1e-4


def test_inputs_longer_than_the_package_are_a_user_error(text_model, text_package) -> None:
    from transformers import AutoTokenizer

    task = "text-classification"
    encoded = AutoTokenizer.from_pretrained(text_model(task))([" ".join(WORDS * 3)], return_tensors="pt")
    with pytest.raises(
        ModelExportError, match=r"^The inputs have \d+ along sequence_length; the package holds at most 16"
    ):
        AutoModelForONNX.from_pretrained(text_package(task, 2))(**encoded)


def test_a_plain_optimum_export_needs_its_task_named(optimum_package) -> None:
    package = optimum_package("text-classification", True)
    with pytest.raises(ModelExportError, match="does not record its task"):
        AutoModelForONNX.from_pretrained(package)
    assert AutoModelForONNX.from_pretrained(package, task="text-classification").config.model_type == "bert"


def test_an_image_classifier_takes_any_batch(tiny_vit_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoImageProcessor, ViTForImageClassification

    from modelexport_vision.samples import synthetic_image

    export(tiny_vit_dir, tmp_path / "vit", task="image-classification", batch_size=2, validate=False)
    model = AutoModelForONNX.from_pretrained(tmp_path / "vit")
    processor = AutoImageProcessor.from_pretrained(tiny_vit_dir)
    for count in (1, 3):
        pixels = processor([synthetic_image(40 + i, 30, seed=i) for i in range(count)], return_tensors="pt")
        with torch.no_grad():
            theirs = ViTForImageClassification.from_pretrained(tiny_vit_dir).eval()(**pixels).logits
        assert float((model(**pixels).logits - theirs).abs().max()) <= 1e-4
