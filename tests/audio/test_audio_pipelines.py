"""Audio packages: export through the CLI and API, Optimum loading, and `create_pipeline` answers equal to the
transformers PyTorch pipeline's for audio classification and chunked CTC speech recognition, at batch 1 and 4."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from transformers import pipeline
from typer.testing import CliRunner

from modelexport_audio import ONNXFeatureExtractor, ORTModelForCTC
from modelexport_audio.samples import noise, silence, speech_like, tone
from modelexport_core import FixedShapeWarning, ONNXAutoProcessor, create_pipeline, export
from modelexport_core.bench.benchmark import RUNNERS, run_benchmark
from modelexport_core.cli import app

from conftest import run_modelexport
from tiny_audio_models import LABELS, SAMPLING_RATE, write_tiny_audio_classifier, write_tiny_ctc

WINDOW = 8000  # half a second: the packages' fixed number of samples
TEN_MINUTES = 10 * 60 * SAMPLING_RATE
CLASSIFY, RECOGNIZE = "audio-classification", "automatic-speech-recognition"


def clips() -> list[np.ndarray]:
    """Clips of the window and shorter: speech-like, tones, noise, silence."""
    return [
        speech_like(WINDOW, SAMPLING_RATE, seed=1),
        speech_like(6000, SAMPLING_RATE, seed=2),
        tone(3000, SAMPLING_RATE, 440),
        tone(7000, SAMPLING_RATE, 1500, amplitude=0.2),
        noise(5000, seed=4),
        silence(4000),
        speech_like(1234, SAMPLING_RATE, seed=5),
    ]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audio-models")
    return {
        CLASSIFY: write_tiny_audio_classifier(root / "classifier"),
        RECOGNIZE: write_tiny_ctc(root / "ctc"),
        "group-norm": write_tiny_audio_classifier(root / "group-norm", norm="group"),
    }


@pytest.fixture(scope="module")
def cli_ctc_package(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """`modelexport export ctc OUT --task automatic-speech-recognition --audio-sequence-length 8000`."""
    out_dir = tmp_path_factory.mktemp("audio-cli") / "ctc-b1"
    run = run_modelexport("export", models[RECOGNIZE], out_dir, "--task", RECOGNIZE, "--audio-sequence-length", WINDOW)
    return out_dir, run


@pytest.fixture(scope="module")
def package(
    models: dict[str, Path], cli_ctc_package: tuple[Path, object], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, int], Path]:
    """Factory: (task, batch_size) -> the package of that task's tiny model (batch x 8000 samples), exported once."""
    exported: dict[tuple[str, int], Path] = {(RECOGNIZE, 1): cli_ctc_package[0]}

    def get(task: str, batch_size: int) -> Path:
        if (task, batch_size) not in exported:
            out_dir = tmp_path_factory.mktemp("audio-packages") / f"{task}-b{batch_size}"
            export(
                models[task], out_dir, task=task, batch_size=batch_size, audio_sequence_length=WINDOW, validate=False
            )
            exported[task, batch_size] = out_dir
        return exported[task, batch_size]

    return get


@pytest.fixture(scope="module")
def ours(package: Callable) -> Callable[[str, int], object]:
    """Factory: (task, batch_size) -> `create_pipeline` over that package, built once."""
    built: dict[tuple[str, int], object] = {}

    def get(task: str, batch_size: int) -> object:
        if (task, batch_size) not in built:
            built[task, batch_size] = create_pipeline(task, package(task, batch_size))
        return built[task, batch_size]

    return get


@pytest.fixture(scope="module")
def reference(models: dict[str, Path]) -> Callable[[str], object]:
    """Factory: task -> the transformers PyTorch pipeline of its tiny model, built once."""
    built: dict[str, object] = {}

    def get(task: str) -> object:
        if task not in built:
            built[task] = pipeline(task, model=str(models[task]), framework="pt")
        return built[task]

    return get


def assert_same_labels(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs)
    for mine, expected in zip(ours, theirs, strict=True):
        assert [r["label"] for r in mine] == [r["label"] for r in expected]
        assert [r["score"] for r in mine] == pytest.approx([r["score"] for r in expected], abs=1e-4)


# ---- export, validation, Optimum ----


def test_cli_export_writes_a_valid_ctc_package_with_mask_extractor_and_tokenizer(cli_ctc_package) -> None:
    out_dir, run = cli_ctc_package
    assert run.returncode == 0, run.stderr
    metadata = json.loads((out_dir / "export_metadata.json").read_text())
    assert (metadata["task"], metadata["modality"]) == (RECOGNIZE, "audio")
    assert metadata["shapes"] == {"input_values": [1, WINDOW], "attention_mask": [1, WINDOW]}
    assert metadata["validation"]["ok"]
    written = {entry["path"] for entry in metadata["files"]}
    assert {"preprocessor_config.json", "vocab.json", "tokenizer_config.json", "config.json"} <= written
    validated = CliRunner().invoke(app, ["validate", str(out_dir)])
    assert validated.exit_code == 0, validated.output


def test_group_norm_models_keep_optimums_inputs_and_padding_moves_their_logits(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """The README's measurement: a group-norm encoder cannot honour a mask, so a padded clip's answer moves."""
    from optimum.onnxruntime import ORTModelForAudioClassification
    from transformers import AutoFeatureExtractor, Wav2Vec2ForSequenceClassification

    export(models["group-norm"], tmp_path / "pkg", task=CLASSIFY, audio_sequence_length=16000, validate=False)
    onnx_model = ORTModelForAudioClassification.from_pretrained(tmp_path / "pkg")
    assert list(onnx_model.input_names) == ["input_values"]
    torch_model = Wav2Vec2ForSequenceClassification.from_pretrained(models["group-norm"]).eval()
    plain = AutoFeatureExtractor.from_pretrained(models["group-norm"])
    fixed = ONNXAutoProcessor.from_model(tmp_path / "pkg")
    deviation = {}
    for samples in (16000, 12000):
        clip = speech_like(samples, SAMPLING_RATE)
        with torch.no_grad():
            expected = torch_model(**plain(clip, sampling_rate=SAMPLING_RATE, return_tensors="pt")).logits
        deviation[samples] = float((onnx_model(**fixed(clip, return_tensors="pt")).logits - expected).abs().max())
    print(f"group-norm logits deviation: full window {deviation[16000]:.2e}, 12000 of 16000 {deviation[12000]:.2e}")
    assert deviation[16000] < 1e-3 < deviation[12000]


def test_padding_does_not_move_the_logits_of_a_masked_model(package: Callable, models: dict[str, Path]) -> None:
    from optimum.onnxruntime import ORTModelForAudioClassification
    from transformers import AutoFeatureExtractor, Wav2Vec2ForSequenceClassification

    onnx_model = ORTModelForAudioClassification.from_pretrained(package(CLASSIFY, 1))
    assert list(onnx_model.input_names) == ["input_values", "attention_mask"]
    torch_model = Wav2Vec2ForSequenceClassification.from_pretrained(models[CLASSIFY]).eval()
    plain = AutoFeatureExtractor.from_pretrained(models[CLASSIFY])
    fixed = ONNXAutoProcessor.from_model(package(CLASSIFY, 1))
    clip = speech_like(6000, SAMPLING_RATE)
    with torch.no_grad():
        expected = torch_model(**plain(clip, sampling_rate=SAMPLING_RATE, return_tensors="pt")).logits
    assert (onnx_model(**fixed(clip, return_tensors="pt")).logits - expected).abs().max() < 1e-4


def test_auto_processor_returns_the_feature_extractor_of_the_package(package: Callable) -> None:
    processor = ONNXAutoProcessor.from_model(package(CLASSIFY, 4) / "model.onnx")
    assert isinstance(processor, ONNXFeatureExtractor)
    assert (processor.batch_size, processor.sequence_length, processor.shape_source) == (4, WINDOW, "export_metadata")


def test_optimums_asr_pipeline_runs_the_ctc_package_through_the_plugins_ortmodel(
    package: Callable, reference: Callable
) -> None:
    """Optimum's ORTModelForCTC has no main_input_name, which crashes its ASR pipeline; the plugin's class has it."""
    from optimum.pipelines import pipeline as optimum_pipeline
    from transformers import AutoTokenizer

    directory = package(RECOGNIZE, 1)
    model = ORTModelForCTC.from_pretrained(directory)
    assert model.main_input_name == "input_values"
    asr = optimum_pipeline(
        RECOGNIZE,
        model=model,
        accelerator="ort",
        feature_extractor=ONNXAutoProcessor.from_model(directory),
        tokenizer=AutoTokenizer.from_pretrained(directory),
    )
    clip = speech_like(WINDOW, SAMPLING_RATE, seed=7)  # the full window: no padding for the stock pipeline to keep
    assert asr(clip) == reference(RECOGNIZE)(clip)


# ---- create_pipeline answers as the PyTorch pipeline ----


@pytest.mark.parametrize("batch_size", [1, 4])
def test_audio_classification_equals_pytorch(ours: Callable, reference: Callable, batch_size: int) -> None:
    classifier = ours(CLASSIFY, batch_size)
    waveforms = clips()
    expected = reference(CLASSIFY)(waveforms)
    assert_same_labels(classifier(waveforms), expected)
    assert_same_labels(classifier(waveforms, batch_size=3), expected)  # chunks of 3 on a model fixed at 1 or 4
    assert_same_labels([classifier(waveforms[2])], expected[2:3])
    assert {r["label"] for r in classifier(waveforms, top_k=1)[0]} <= set(LABELS.values())


@pytest.mark.parametrize("batch_size", [1, 4])
def test_speech_recognition_equals_pytorch_on_clips_up_to_the_window(
    ours: Callable, reference: Callable, batch_size: int
) -> None:
    recognizer = ours(RECOGNIZE, batch_size)
    waveforms = clips()
    expected = reference(RECOGNIZE)(waveforms)
    assert recognizer(waveforms) == expected
    assert recognizer(waveforms, batch_size=3) == expected
    assert all(result["text"] for result in expected[:2])  # the speech-like clips are transcribed as something


@pytest.mark.parametrize("batch_size", [1, 4])
def test_long_audio_is_chunked_with_stride_as_pytorch_with_the_same_settings(
    ours: Callable, reference: Callable, batch_size: int
) -> None:
    recognizer = ours(RECOGNIZE, batch_size)
    long_clip = speech_like(2 * WINDOW + 4321, SAMPLING_RATE, seed=9)
    chunking = {"chunk_length_s": 0.5, "stride_length_s": 0.1} if batch_size == 1 else {"chunk_length_s": 0.3}
    expected = reference(RECOGNIZE)(long_clip, **chunking)
    assert recognizer(long_clip, **chunking) == expected
    assert recognizer([long_clip, long_clip[:3000]], batch_size=3, **chunking)[0] == expected
    if batch_size == 1:  # without settings, chunks fill the window
        assert recognizer(long_clip) == reference(RECOGNIZE)(long_clip, chunk_length_s=WINDOW / SAMPLING_RATE)


def test_a_chunk_longer_than_the_window_is_a_one_line_error(ours: Callable) -> None:
    recognizer = ours(RECOGNIZE, 1)
    with pytest.raises(ValueError) as raised:
        recognizer(tone(20000, SAMPLING_RATE), chunk_length_s=1.0)
    assert str(raised.value) == (
        "chunk_length_s=1.0 exceeds the model's fixed window of 8000 samples (0.5 s): use chunk_length_s <= 0.5"
    )


def test_classification_of_a_clip_longer_than_the_window_warns(ours: Callable) -> None:
    classifier = ours(CLASSIFY, 1)
    with pytest.warns(FixedShapeWarning, match=f"Waveform of length 9000 was truncated to the fixed {WINDOW}"):
        assert len(classifier(tone(9000, SAMPLING_RATE))) == len(LABELS)


def _outcome(run: Callable[[], object]) -> tuple[bool, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run()
    except Exception as err:  # the outcome under test: which lengths raise, and how
        return True, str(err)
    return False, ""


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(length=st.integers(0, TEN_MINUTES), seed=st.integers(0, 2**16))
@example(length=0, seed=0)
@example(length=39, seed=0)
@example(length=40, seed=0)
@example(length=TEN_MINUTES, seed=0)
def test_classification_raises_only_where_pytorch_does(
    ours: Callable, reference: Callable, length: int, seed: int
) -> None:
    classifier = ours(CLASSIFY, 1)
    waveform = noise(length, seed)
    raised, message = _outcome(lambda: classifier(waveform))
    if raised:
        assert _outcome(lambda: reference(CLASSIFY)(waveform))[0], message
        assert message == f"A clip of {length} samples is too short for the model: it needs at least 40"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(length=st.integers(0, 4 * WINDOW), seed=st.integers(0, 2**16), chunked=st.booleans())
@example(length=0, seed=0, chunked=False)
@example(length=39, seed=0, chunked=True)
@example(length=40, seed=0, chunked=False)
def test_speech_recognition_raises_only_where_pytorch_does(
    ours: Callable, reference: Callable, length: int, seed: int, chunked: bool
) -> None:
    """Lengths up to four windows (the chunking path); ten minutes take about a minute on this model."""
    recognizer = ours(RECOGNIZE, 1)
    settings_ = {"chunk_length_s": 0.25, "stride_length_s": 0.05} if chunked else {}
    waveform = noise(length, seed)
    raised, message = _outcome(lambda: recognizer(waveform, **settings_))
    if raised:
        assert _outcome(lambda: reference(RECOGNIZE)(waveform, **settings_))[0], message
        assert len(message.splitlines()) == 1 and "too short for the model" in message


# ---- benchmark ----


def test_benchmark_times_audio_classification_side_by_side(package: Callable, models: dict[str, Path]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FixedShapeWarning)  # the one-second clips fill two windows of 8000
        rows = run_benchmark(package(CLASSIFY, 4), models[CLASSIFY], count=4, warmup=0, repeats=1)
    assert [row.inputs for row in rows] == ["short", "one_second"]
    for row in rows:
        assert (row.count, row.batch_size) == (4, 4)
        assert set(row.seconds) == set(RUNNERS) and all(s > 0 for s in row.seconds.values())
