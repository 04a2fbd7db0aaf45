"""The OnnxConfig of Wav2Vec2-like models (Wav2Vec2, HuBERT, WavLM, ...) with an `attention_mask` input.

Optimum's configs for these models export `input_values` only, so on a fixed-shape model the padding of a
short clip changes the answer. Models whose feature encoder uses layer norm (`feat_extract_norm="layer"`, as
wav2vec2-large-lv60 or hubert-large) honour a mask, and their feature extractors return one: their export takes
it too. Models with a group-norm encoder (wav2vec2-base) were trained without a mask and normalize over the
padding anyway: they keep Optimum's config.
"""

from __future__ import annotations

from typing import Any

from optimum.exporters.onnx.model_configs import HubertOnnxConfig
from optimum.utils.input_generators import DummyAudioInputGenerator


class DummyAudioWithMaskGenerator(DummyAudioInputGenerator):
    """Optimum's waveform generator that also makes an attention mask (right-padded, as Optimum's text masks)."""

    SUPPORTED_INPUT_NAMES = (*DummyAudioInputGenerator.SUPPORTED_INPUT_NAMES, "attention_mask")

    def generate(self, input_name: str, framework: str = "pt", int_dtype: str = "int64", float_dtype: str = "fp32"):
        if input_name == "attention_mask":
            shape = [self.batch_size, self.sequence_length]
            return self.random_mask_tensor(shape, framework=framework, dtype=int_dtype)
        return super().generate(input_name, framework, int_dtype, float_dtype)


class MaskedWaveformOnnxConfig(HubertOnnxConfig):
    """Optimum's config of the Wav2Vec2 / HuBERT family, with `attention_mask` beside `input_values`."""

    DUMMY_INPUT_GENERATOR_CLASSES = (DummyAudioWithMaskGenerator,)

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        values = super().inputs["input_values"]
        return {"input_values": values, "attention_mask": dict(values)}


def takes_attention_mask(config: Any) -> bool:
    """Whether the model's feature encoder honours an attention mask (layer norm, not group norm)."""
    return getattr(config, "feat_extract_norm", None) == "layer"


def waveform_onnx_config(config: Any, task: str) -> MaskedWaveformOnnxConfig | None:
    """The masked config for a layer-norm model Optimum exports with HubertOnnxConfig (or a subclass); else None."""
    from optimum.exporters.tasks import TasksManager

    if not takes_attention_mask(config):
        return None
    try:
        constructor = TasksManager.get_exporter_config_constructor(
            "onnx", task=task, model_type=config.model_type, library_name="transformers"
        )
    except (KeyError, ValueError):  # a task or model type Optimum lacks: core explains
        return None
    stock = constructor(config, task=task)
    return MaskedWaveformOnnxConfig(config, task=task) if isinstance(stock, HubertOnnxConfig) else None
