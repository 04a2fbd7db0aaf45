"""The audio plugin: registers `AudioModality`, the attention-mask OnnxConfig of Wav2Vec2-like models and the
CTC ORTModel Optimum's falls short of."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelexport_audio.modality import AudioModality
from modelexport_core import Modality, hookimpl


@hookimpl
def register_modalities(register: Callable[[Modality], None]) -> None:
    register(AudioModality())


@hookimpl
def onnx_config(config: Any, task: str) -> Any | None:
    from modelexport_audio.onnx_config import waveform_onnx_config

    return waveform_onnx_config(config, task)


@hookimpl
def ort_model_class(task: str) -> type | None:
    if task != "automatic-speech-recognition":
        return None
    from modelexport_audio.modeling import ORTModelForCTC

    return ORTModelForCTC
