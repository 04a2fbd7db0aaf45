"""Audio hooks: modality declaration, shape naming and defaults, feature extractor (and CTC tokenizer) copying,
loading and wrapping, the attention-mask OnnxConfig, the CTC ORTModel, pipeline classes, benchmark waveforms."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from modelexport_core import Modality, hookimpl

AUDIO = Modality(
    name="audio",
    tasks=("audio-classification", "automatic-speech-recognition"),
    input_names=("input_values",),
)
DEFAULT_SAMPLING_RATE = 16000  # the default window is one second of audio
PREPROCESSOR_FILE = "preprocessor_config.json"


@hookimpl
def register_modalities() -> list[Modality]:
    return [AUDIO]


@hookimpl
def detect_shapes(modality: str, input_shapes: dict[str, list[int | None]]) -> dict[str, int | None] | None:
    if modality != AUDIO.name or "input_values" not in input_shapes:
        return None
    batch_size, samples = (list(input_shapes["input_values"]) + [None, None])[:2]
    return {"batch_size": batch_size, "audio_sequence_length": samples}


@hookimpl
def default_shapes(modality: str, package_dir: Path) -> dict[str, int] | None:
    if modality != AUDIO.name:
        return None
    try:
        rate = json.loads((Path(package_dir) / PREPROCESSOR_FILE).read_text()).get("sampling_rate")
    except (OSError, ValueError):
        rate = None
    return {"audio_sequence_length": rate if isinstance(rate, int) and rate > 0 else DEFAULT_SAMPLING_RATE}


@hookimpl
def load_processor(modality: str, processor_dir: str) -> Any | None:
    if modality != AUDIO.name:
        return None
    from transformers import AutoFeatureExtractor

    return AutoFeatureExtractor.from_pretrained(processor_dir)


@hookimpl
def copy_configs(modality: str, source: str, out_dir: Path, hub_kwargs: dict[str, Any]) -> list[str] | None:
    """The feature extractor's preprocessor_config.json, and the tokenizer where there is one (CTC models)."""
    if modality != AUDIO.name:
        return None
    from transformers import AutoFeatureExtractor, AutoTokenizer

    try:
        extractor = AutoFeatureExtractor.from_pretrained(source, **hub_kwargs)
    except (OSError, ValueError):
        warnings.warn(
            f"{source} has no {PREPROCESSOR_FILE}: the package has none, so pass a feature extractor "
            "(or hf_model_path=) to create_pipeline / ONNXAutoProcessor",
            stacklevel=2,
        )
        return []
    written = extractor.save_pretrained(out_dir)
    try:
        written += AutoTokenizer.from_pretrained(source, **hub_kwargs).save_pretrained(out_dir)
    except (OSError, ValueError, TypeError):  # no tokenizer: not a speech-recognition model
        pass
    return sorted({Path(name).name for name in written if (out_dir / Path(name).name).is_file()})


@hookimpl
def wrap_processor(modality: str, processor: Any, shapes: dict[str, int]) -> Any | None:
    if modality != AUDIO.name:
        return None
    from transformers import SequenceFeatureExtractor

    from .feature_extractor import ONNXFeatureExtractor

    if not isinstance(processor, SequenceFeatureExtractor):
        return None
    return ONNXFeatureExtractor(processor, shapes["batch_size"], shapes["audio_sequence_length"])


@hookimpl
def onnx_config(config: Any, task: str) -> Any | None:
    from .onnx_config import waveform_onnx_config

    return waveform_onnx_config(config, task)


@hookimpl
def ort_model_class(task: str) -> type | None:
    if task != "automatic-speech-recognition":
        return None
    from .modeling import ORTModelForCTC

    return ORTModelForCTC


@hookimpl
def pipeline_class(task: str, modality: str) -> type | None:
    if modality != AUDIO.name:
        return None
    from .pipelines import FixedWindowAudioClassificationPipeline, FixedWindowSpeechRecognitionPipeline

    return {
        "audio-classification": FixedWindowAudioClassificationPipeline,
        "automatic-speech-recognition": FixedWindowSpeechRecognitionPipeline,
    }.get(task)


@hookimpl
def sample_inputs(modality: str, sequence_length: int) -> dict[str, list[Any]] | None:
    if modality != AUDIO.name:
        return None
    from .samples import sample_waveforms

    return sample_waveforms(DEFAULT_SAMPLING_RATE)
