"""`AudioModality`: what the audio plugin registers; its methods carry everything waveform-specific."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelexport_core import Modality, ModelExportError

DEFAULT_SAMPLING_RATE = 16000  # the default window is one second of audio
PREPROCESSOR_FILE = "preprocessor_config.json"


class AudioModality(Modality):
    """Mono waveforms through a feature extractor: `input_values` [batch, audio_sequence_length] samples;
    shape buckets (windows) and sorting by sample count."""

    name = "audio"
    tasks = ("audio-classification", "automatic-speech-recognition")
    input_names = ("input_values",)
    dim_names = ("batch_size", "audio_sequence_length")
    input_column = "audio"
    length_dim = "audio_sequence_length"
    mask_input = "attention_mask"

    def name_dims(self, input_shapes: Mapping[str, Sequence[int | None]]) -> dict[str, int | None]:
        batch_size, samples = [*input_shapes.get("input_values", ()), None, None][:2]
        return {"batch_size": batch_size, "audio_sequence_length": samples}

    def default_dims(self, package_dir: Path) -> dict[str, int]:
        """One second at the feature extractor's sampling rate (16 kHz without one)."""
        try:
            rate = json.loads((Path(package_dir) / PREPROCESSOR_FILE).read_text()).get("sampling_rate")
        except (OSError, ValueError):
            rate = None
        return {"audio_sequence_length": rate if isinstance(rate, int) and rate > 0 else DEFAULT_SAMPLING_RATE}

    def save_preprocessor(self, source: str, out_dir: Path, hub_kwargs: Mapping[str, Any]) -> None:
        """The feature extractor's preprocessor_config.json, and the tokenizer where there is one (CTC models)."""
        from transformers import AutoFeatureExtractor, AutoTokenizer

        try:
            extractor = AutoFeatureExtractor.from_pretrained(source, **hub_kwargs)
        except (OSError, ValueError):
            warnings.warn(
                f"{source} has no {PREPROCESSOR_FILE}: the package has none, so pass a feature extractor "
                "(or hf_model_path=) to create_pipeline / ONNXAutoProcessor",
                stacklevel=2,
            )
            return
        extractor.save_pretrained(out_dir)
        with contextlib.suppress(OSError, ValueError, TypeError):  # no tokenizer: not a speech-recognition model
            AutoTokenizer.from_pretrained(source, **hub_kwargs).save_pretrained(out_dir)

    def load_processor(self, directory: str, trust_remote_code: bool = False) -> Any:
        from transformers import AutoFeatureExtractor

        return AutoFeatureExtractor.from_pretrained(directory, trust_remote_code=trust_remote_code)

    def wrap_processor(self, processor: Any, dims: Mapping[str, int]) -> Any | None:
        from transformers import SequenceFeatureExtractor

        from modelexport_audio.feature_extractor import ONNXFeatureExtractor

        if not isinstance(processor, SequenceFeatureExtractor):
            return None
        return ONNXFeatureExtractor(processor, dims["batch_size"], dims["audio_sequence_length"])

    def pipeline_class(self, task: str) -> type | None:
        from modelexport_audio.pipelines import (
            FixedWindowAudioClassificationPipeline,
            FixedWindowSpeechRecognitionPipeline,
        )

        return {
            "audio-classification": FixedWindowAudioClassificationPipeline,
            "automatic-speech-recognition": FixedWindowSpeechRecognitionPipeline,
        }.get(task)

    def input_lengths(self, items: Sequence[Any], processor: Any) -> list[int] | None:
        """Sample counts of waveforms given as arrays, lists of floats or {"raw" / "array": ...} dicts; None for
        anything that would have to be decoded first (file names, bytes)."""
        lengths = [_samples(item) for item in items]
        return None if None in lengths else lengths  # type: ignore[return-value]

    def read_input(self, value: str) -> Any:
        """The WAV file at `value` (PCM, any channels: their mean) as the pipelines' {"raw", "sampling_rate"}."""
        import wave

        import numpy as np

        if not Path(value).is_file():
            raise ModelExportError(f"Audio file not found: {value}")
        try:
            with wave.open(value) as audio:
                frames, width, channels = (
                    audio.readframes(audio.getnframes()),
                    audio.getsampwidth(),
                    audio.getnchannels(),
                )
                rate = audio.getframerate()
        except (wave.Error, EOFError) as err:
            raise ModelExportError(f"Cannot read {value} as a WAV file: {err}") from None
        if width not in (1, 2, 4):
            raise ModelExportError(f"{value}: {8 * width}-bit WAV samples are not supported (8, 16 or 32-bit PCM)")
        dtype, scale, offset = {1: (np.uint8, 128.0, 128.0), 2: (np.int16, 32768.0, 0.0), 4: (np.int32, 2.0**31, 0.0)}[
            width
        ]
        samples = (np.frombuffer(frames, dtype=dtype).astype(np.float32) - offset) / scale
        return {"raw": samples.reshape(-1, channels).mean(axis=1), "sampling_rate": rate}

    def sample_inputs(self, dims: Mapping[str, int]) -> dict[str, list[Any]]:
        from modelexport_audio.samples import sample_waveforms

        return sample_waveforms(DEFAULT_SAMPLING_RATE)

    def corpus(self) -> list[Any]:
        from modelexport_audio.samples import corpus_waveforms

        return corpus_waveforms(DEFAULT_SAMPLING_RATE)


def _samples(item: Any) -> int | None:
    """A waveform's sample count, or None when it would have to be decoded first."""
    if isinstance(item, dict):
        item = item.get("raw", item.get("array"))
    if hasattr(item, "shape"):  # a numpy array or torch tensor
        return int(item.shape[-1]) if len(item.shape) else None
    if isinstance(item, (list, tuple)) and all(isinstance(value, (int, float)) for value in item[:1]):
        return len(item)
    return None
