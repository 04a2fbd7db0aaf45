"""AutoModelForONNX: a package as the model its task names, fed any batch size and any length its buckets allow,
gives the PyTorch model's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modelexport_core import AutoModelForONNX, ModelExportError, export

TEXT_TASKS = [
    "text-classification",
    "zero-shot-classification",
    "token-classification",
    "question-answering",
    "fill-mask",
    "feature-extraction",
]
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


def test_a_plain_optimum_export_is_served_as_its_config_says(optimum_package) -> None:
    package = optimum_package("text-classification", True)
    with pytest.warns(UserWarning, match=r"does not record its task: serving it as text-classification"):
        model = AutoModelForONNX.from_pretrained(package)
    assert model.config.model_type == "bert"


def test_an_unknown_task_lists_the_known_ones(text_package) -> None:
    with pytest.raises(ModelExportError, match=r"^No ORTModel class for task 'translate'; .*text-classification"):
        AutoModelForONNX.from_pretrained(text_package("text-classification", 2), task="translate")


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


def _waveforms(count: int) -> list:
    import numpy as np

    return [np.random.RandomState(i).randn(800 + 100 * i).astype(np.float32) for i in range(count)]


def _images(package: Path, count: int) -> dict:
    from modelexport_core import ONNXAutoProcessor
    from modelexport_vision.samples import synthetic_image

    images = [synthetic_image(40 + i, 30, seed=i) for i in range(count)]
    return dict(ONNXAutoProcessor.from_model(package)(images=images, return_tensors="pt"))


def _audio_inputs(source: Path, package: Path, count: int) -> dict:
    from transformers import AutoFeatureExtractor

    extractor = AutoFeatureExtractor.from_pretrained(source)
    return dict(extractor(_waveforms(count), sampling_rate=16000, padding=True, return_tensors="pt"))


def _clip_inputs(source: Path, package: Path, count: int) -> dict:
    from transformers import AutoTokenizer

    texts = AutoTokenizer.from_pretrained(source)(_texts(count), padding=True, return_tensors="pt")
    return {**texts, "pixel_values": _images(package, count)["pixel_values"]}


def _document_inputs(source: Path, package: Path, count: int) -> dict:
    from transformers import AutoTokenizer

    encoded = dict(AutoTokenizer.from_pretrained(source)(_texts(count), padding=True, return_tensors="pt"))
    rows, length = encoded["input_ids"].shape
    encoded["bbox"] = torch.randint(0, 500, (rows, length, 4), generator=torch.Generator().manual_seed(0)).sort(-1)[0]
    return encoded


def _builders() -> dict:
    from tiny_audio_models import write_tiny_audio_classifier, write_tiny_ctc
    from tiny_multimodal_models import write_tiny_clip, write_tiny_layoutlm
    from tiny_vision_models import write_tiny_detr, write_tiny_segformer

    audio = {"batch_size": 2, "sequence_length": 2000}
    clip = {"input_shapes": {"pixel_values": [2, 3, 32, 32], "input_ids": [3, 16], "attention_mask": [3, 16]}}
    return {  # task: (tiny model writer, export shapes, inputs of `count` items)
        "object-detection": (write_tiny_detr, {"batch_size": 2}, lambda src, pkg, n: _images(pkg, n)),
        "image-segmentation": (write_tiny_segformer, {"batch_size": 2}, lambda src, pkg, n: _images(pkg, n)),
        "audio-classification": (write_tiny_audio_classifier, audio, _audio_inputs),
        "automatic-speech-recognition": (write_tiny_ctc, audio, _audio_inputs),
        "zero-shot-image-classification": (write_tiny_clip, clip, _clip_inputs),
        "document-question-answering": (
            write_tiny_layoutlm,
            {"batch_size": 2, "sequence_length": 24},
            _document_inputs,
        ),
    }


@pytest.mark.parametrize("task", list(_builders()))
def test_every_modality_takes_any_batch_and_length(task: str, tmp_path: Path) -> None:
    """Audio of any length (samples padded, frames cut back), CLIP texts of any length, boxes of any length."""
    write, shapes, inputs = _builders()[task]
    source = write(tmp_path / "model")
    export(source, tmp_path / "package", task=task, validate=False, **shapes)
    model = AutoModelForONNX.from_pretrained(tmp_path / "package")
    pytorch = model.auto_model_class.from_pretrained(source).eval()
    for count in (1, 3, 9):
        encoded = inputs(source, tmp_path / "package", count)
        ours = model(**encoded)
        with torch.no_grad():
            theirs = pytorch(**encoded)
        names = [name for name in ours if isinstance(ours[name], torch.Tensor)]
        assert names and all(ours[name].shape == theirs[name].shape for name in names)
        assert max(float((ours[name] - theirs[name]).abs().max()) for name in names) <= 1e-4


def test_an_image_of_another_size_is_a_user_error(tiny_vit_dir: Path, tmp_path: Path) -> None:
    export(tiny_vit_dir, tmp_path / "vit", task="image-classification", validate=False)
    with pytest.raises(ModelExportError, match=r"^The inputs have 16 along height; the package takes exactly 32"):
        AutoModelForONNX.from_pretrained(tmp_path / "vit")(pixel_values=torch.zeros(1, 3, 16, 32))
