"""ONNXFeatureExtractor: every waveform becomes exactly the fixed number of samples; the rest is the wrapped
extractor's."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor

from modelexport_audio import ONNXFeatureExtractor
from modelexport_audio.samples import noise, silence, speech_like, tone
from modelexport_core import FixedShapeWarning, ModelExportError

from tiny_audio_models import SAMPLING_RATE

WINDOW = 8000
TEN_MINUTES = 10 * 60 * SAMPLING_RATE


def extractor(return_attention_mask: bool = True, **overrides: object) -> Wav2Vec2FeatureExtractor:
    settings = dict(sampling_rate=SAMPLING_RATE, do_normalize=True, return_attention_mask=return_attention_mask)
    return Wav2Vec2FeatureExtractor(**{**settings, **overrides})


@pytest.fixture(scope="module")
def fixed() -> ONNXFeatureExtractor:
    return ONNXFeatureExtractor(extractor(), batch_size=1, sequence_length=WINDOW)


def test_every_kind_of_waveform_becomes_the_fixed_shape(fixed: ONNXFeatureExtractor) -> None:
    clip = speech_like(3000, SAMPLING_RATE)
    kinds = {
        "array": clip,
        "list of floats": clip.tolist(),
        "tensor": torch.from_numpy(clip),
        "float64 array": clip.astype(np.float64),
    }
    expected = fixed.wrapped(clip, sampling_rate=SAMPLING_RATE, padding="max_length", max_length=WINDOW)
    for kind, waveform in kinds.items():
        encoding = fixed(waveform, sampling_rate=SAMPLING_RATE, return_tensors="np")
        assert encoding["input_values"].shape == (1, WINDOW), kind
        np.testing.assert_allclose(encoding["input_values"], expected["input_values"], atol=1e-6, err_msg=kind)
    empty = fixed([], return_tensors="np")  # a waveform of no samples: all padding
    assert empty["input_values"].shape == (1, WINDOW) and not empty["attention_mask"].any()
    batches = {
        "list of arrays": [clip, tone(9000, SAMPLING_RATE), silence(10)],
        "list of lists": [clip.tolist(), [0.1, -0.1, 0.2]],
        "2-D array": np.stack([clip, clip[::-1]]),
        "list of tensors": [torch.from_numpy(clip), torch.zeros(5)],
    }
    for kind, batch in batches.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FixedShapeWarning)
            encoding = fixed(batch, return_tensors="pt")
        assert encoding["input_values"].shape == (len(batch), WINDOW), kind
        assert encoding["attention_mask"].shape == (len(batch), WINDOW), kind


def test_real_samples_are_normalized_as_without_padding_and_padding_is_the_padding_value() -> None:
    plain = extractor(return_attention_mask=False, padding_value=0.0)  # normalizes over padding when padding
    fixed = ONNXFeatureExtractor(plain, batch_size=1, sequence_length=WINDOW)
    clip = noise(5000, seed=3) + 0.2  # an offset, so normalizing over the padding would show
    unpadded = plain(clip, sampling_rate=SAMPLING_RATE, return_tensors="np")["input_values"][0]
    values = fixed(clip, sampling_rate=SAMPLING_RATE, return_tensors="np")["input_values"][0]
    np.testing.assert_allclose(values[:5000], unpadded, atol=1e-5)
    assert not values[5000:].any()


def test_truncation_warns_with_the_input_length(fixed: ONNXFeatureExtractor) -> None:
    with pytest.warns(FixedShapeWarning, match=f"Waveform of length 12345 was truncated to the fixed {WINDOW}"):
        encoding = fixed(tone(12345, SAMPLING_RATE), return_tensors="np")
    assert encoding["input_values"].shape == (1, WINDOW) and encoding["attention_mask"].all()
    with pytest.warns(FixedShapeWarning, match="Waveform 2 of the batch of length 20000"):
        fixed([tone(100, SAMPLING_RATE), tone(9000, SAMPLING_RATE), tone(20000, SAMPLING_RATE)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FixedShapeWarning)
        fixed([tone(WINDOW, SAMPLING_RATE), silence(0)])  # exactly the window: no warning


def test_attention_mask_is_returned_when_asked_or_by_default() -> None:
    clip = tone(1000, SAMPLING_RATE)
    with_mask = ONNXFeatureExtractor(extractor(return_attention_mask=True), 1, WINDOW)
    without = ONNXFeatureExtractor(extractor(return_attention_mask=False), 1, WINDOW)
    assert with_mask(clip)["attention_mask"][0].sum() == 1000
    assert "attention_mask" not in without(clip)
    assert without(clip, return_attention_mask=True)["attention_mask"][0].sum() == 1000
    assert "attention_mask" not in with_mask(clip, return_attention_mask=False)


def test_another_sampling_rate_is_a_one_line_error(fixed: ONNXFeatureExtractor) -> None:
    with pytest.raises(ModelExportError) as raised:
        fixed(tone(1000, 8000), sampling_rate=8000)
    assert str(raised.value) == (
        f"Audio sampled at 8000 Hz was given but the model takes {SAMPLING_RATE} Hz: "
        f"resample it to {SAMPLING_RATE} Hz first"
    )


@pytest.mark.parametrize(
    ("waveform", "message"),
    [
        (np.zeros((2, 3, 4)), "Only mono audio is supported: got an array of shape (2, 3, 4)"),
        (np.zeros((0, 100)), "An empty batch of waveforms was given: pass at least one"),
        ("clip.wav", "Cannot read a waveform from a str: pass a numpy array, a list of floats, or a list of them"),
    ],
)
def test_unusable_waveforms_are_one_line_errors(fixed: ONNXFeatureExtractor, waveform: object, message: str) -> None:
    with pytest.raises(ModelExportError) as raised:
        fixed(waveform)
    assert str(raised.value) == message


def test_shapes_must_be_positive_integers() -> None:
    with pytest.raises(ModelExportError, match="positive integer shapes"):
        ONNXFeatureExtractor(extractor(), batch_size=1, sequence_length=0)


def test_everything_else_is_the_wrapped_extractor_and_save_pretrained_round_trips(
    fixed: ONNXFeatureExtractor, tmp_path: Path
) -> None:
    assert (fixed.sampling_rate, fixed.padding_value, fixed.model_input_names) == (
        SAMPLING_RATE,
        0.0,
        fixed.wrapped.model_input_names,
    )
    assert (fixed.sequence_length, fixed.batch_size) == (WINDOW, 1)
    assert repr(fixed).startswith("ONNXFeatureExtractor(batch_size=1, audio_sequence_length=8000")
    fixed.save_pretrained(tmp_path)
    loaded = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert type(loaded) is Wav2Vec2FeatureExtractor and loaded.to_dict() == fixed.wrapped.to_dict()


@settings(max_examples=25, deadline=None)
@given(length=st.integers(0, TEN_MINUTES), batch=st.integers(1, 3), seed=st.integers(0, 2**16))
@example(length=0, batch=1, seed=0)
@example(length=TEN_MINUTES, batch=1, seed=0)
@example(length=WINDOW, batch=2, seed=0)
def test_any_length_from_nothing_to_ten_minutes_gives_the_fixed_shape(
    fixed: ONNXFeatureExtractor, length: int, batch: int, seed: int
) -> None:
    waveforms = [noise(length, seed + row) for row in range(batch)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FixedShapeWarning)
        encoding = fixed(waveforms if batch > 1 else waveforms[0], return_tensors="np")
    assert encoding["input_values"].shape == (batch, WINDOW)
    assert np.isfinite(encoding["input_values"]).all()
    assert encoding["attention_mask"].sum(-1).tolist() == [min(length, WINDOW)] * batch
