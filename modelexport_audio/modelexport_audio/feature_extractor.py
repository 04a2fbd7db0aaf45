"""`ONNXFeatureExtractor`: a HF audio feature extractor whose every output has the ONNX model's fixed sample count."""

from __future__ import annotations

import numbers
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from modelexport_core import ModelExportError
from modelexport_core.serve.fixed import FixedShapeProcessor, warn_truncated

if TYPE_CHECKING:
    from transformers import BatchFeature, SequenceFeatureExtractor


def _as_waveforms(raw_speech: Any) -> list[np.ndarray]:
    """Mono waveforms as a list of 1-D float arrays: one array / list of floats / tensor, or a batch of them."""
    if hasattr(raw_speech, "detach"):  # a torch tensor
        raw_speech = raw_speech.detach().cpu().numpy()
    if isinstance(raw_speech, np.ndarray):
        if raw_speech.ndim > 2:
            raise ModelExportError(f"Only mono audio is supported: got an array of shape {raw_speech.shape}")
        rows = list(raw_speech) if raw_speech.ndim == 2 else [raw_speech]
    elif isinstance(raw_speech, (list, tuple)):
        batched = len(raw_speech) > 0 and not isinstance(raw_speech[0], numbers.Number)
        rows = list(raw_speech) if batched else [raw_speech]
    else:
        raise ModelExportError(
            f"Cannot read a waveform from a {type(raw_speech).__name__}: "
            "pass a numpy array, a list of floats, or a list of them"
        )
    if not rows:
        raise ModelExportError("An empty batch of waveforms was given: pass at least one")
    waveforms = [np.asarray(_numpy(row), dtype=np.float32) for row in rows]
    for waveform in waveforms:
        if waveform.ndim != 1:
            raise ModelExportError(f"Only mono audio is supported: got a waveform of shape {waveform.shape}")
    return waveforms


def _numpy(row: Any) -> Any:
    return row.detach().cpu().numpy() if hasattr(row, "detach") else row


class ONNXFeatureExtractor(FixedShapeProcessor):
    """An audio feature extractor for a fixed-shape ONNX model: `input_values` is always [n, sequence_length].

    Waveforms of any length (numpy arrays, lists of floats, torch tensors, or batches of them; mono) are
    padded with the extractor's padding value to the fixed number of samples, or truncated to it with a
    `FixedShapeWarning` that gives their length. Normalization (`do_normalize`) sees only the real samples, as
    it would without padding. `attention_mask` is returned when asked for or when the wrapped extractor returns
    one by default. Audio sampled at another rate than the extractor's is refused (resampling needs torchaudio
    or scipy, which modelexport does not depend on). Everything else (`sampling_rate`, `pad`,
    `save_pretrained`, ...) is the wrapped extractor's. `for_buckets(windows)` gives one that pads each call to
    the smallest of a package's windows holding its longest waveform instead.
    """

    bucket_lengths: tuple[int, ...] = ()

    def __init__(
        self,
        feature_extractor: SequenceFeatureExtractor,
        batch_size: int,
        sequence_length: int,
        shape_source: str = "given",
    ) -> None:
        shapes = {"batch_size": batch_size, "audio_sequence_length": sequence_length}
        if any(not isinstance(value, numbers.Integral) or value < 1 for value in shapes.values()):
            raise ModelExportError(f"ONNXFeatureExtractor needs positive integer shapes, got {shapes}")
        super().__init__(feature_extractor, {name: int(value) for name, value in shapes.items()}, shape_source)

    @property
    def sequence_length(self) -> int:
        """The fixed number of samples of every waveform the model sees."""
        return self.shapes["audio_sequence_length"]

    def for_buckets(self, lengths: list[int]) -> ONNXFeatureExtractor:
        """This extractor, padding each call to the smallest of `lengths` (windows up to the fixed one) that holds
        its longest waveform, so a batch runs on that window's graph as it is."""
        extractor = ONNXFeatureExtractor(self.wrapped, self.batch_size, self.sequence_length, self.shape_source)
        extractor.bucket_lengths = tuple(sorted(n for n in lengths if n < self.sequence_length))
        return extractor

    def __call__(
        self,
        raw_speech: Any,
        *args: Any,
        sampling_rate: int | None = None,
        return_attention_mask: bool | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Extract features as the wrapped extractor does, padded / truncated to exactly `sequence_length` samples
        (with buckets: the smallest window holding the longest waveform).

        The caller's padding, max_length and truncation are overridden.
        """
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ModelExportError(
                f"Audio sampled at {sampling_rate} Hz was given but the model takes {self.sampling_rate} Hz: "
                f"resample it to {self.sampling_rate} Hz first"
            )
        waveforms = _as_waveforms(raw_speech)
        longest = max(range(len(waveforms)), key=lambda i: len(waveforms[i]))
        if len(waveforms[longest]) > self.sequence_length:
            what = "Waveform" if len(waveforms) == 1 else f"Waveform {longest} of the batch"
            warn_truncated(what, len(waveforms[longest]), self.sequence_length)
        wants_mask = self.return_attention_mask if return_attention_mask is None else return_attention_mask
        return_tensors = kwargs.pop("return_tensors", None)
        samples = len(waveforms[longest])
        window = next((n for n in self.bucket_lengths if n >= samples), self.sequence_length)
        kwargs.update(padding="max_length", max_length=window, truncation=True, pad_to_multiple_of=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's mean of an empty waveform
            encoding = self.wrapped(
                waveforms, *args, sampling_rate=self.sampling_rate, return_attention_mask=True, **kwargs
            )
        if wants_mask:  # int64, the dtype of the exported graph's mask (the extractor's is int32)
            encoding["attention_mask"] = [np.asarray(row, dtype=np.int64) for row in encoding["attention_mask"]]
        else:
            del encoding["attention_mask"]
        return encoding.convert_to_tensors(return_tensors)
