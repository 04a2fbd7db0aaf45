"""Pipeline classes that give the PyTorch pipeline's answers on a model with a fixed number of samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import AudioClassificationPipeline, AutomaticSpeechRecognitionPipeline

from modelexport_core import ModelExportError


def output_frames(config: Any, samples: int) -> int:
    """How many frames the convolutional feature encoder makes of `samples` samples (as the PyTorch model)."""
    for kernel, stride in zip(config.conv_kernel, config.conv_stride, strict=True):
        samples = (samples - kernel) // stride + 1
    return samples


def check_long_enough(config: Any, samples: int) -> int:
    """The frames of a clip of `samples` samples; refuses a clip too short for one frame (PyTorch's conv fails)."""
    frames = output_frames(config, samples)
    if frames < 1:
        shortest = next(n for n in range(1, 1 << 16) if output_frames(config, n) >= 1)
        raise ValueError(f"A clip of {samples} samples is too short for the model: it needs at least {shortest}")
    return frames


class FixedWindowAudioClassificationPipeline(AudioClassificationPipeline):
    """Audio classification that refuses, in one line, a clip too short for the model (as PyTorch's raises).

    Clips longer than the fixed window are truncated by the `ONNXFeatureExtractor`, with a warning.
    """

    def _forward(self, model_inputs: dict[str, Any]) -> Any:
        mask = model_inputs.get("attention_mask")
        for samples in [] if mask is None else mask.sum(-1).tolist():
            check_long_enough(self.model.config, int(samples))
        return super()._forward(model_inputs)


class FixedWindowSpeechRecognitionPipeline(AutomaticSpeechRecognitionPipeline):
    """CTC speech recognition over a fixed window: audio is always cut into chunks of at most the window.

    Without `chunk_length_s`, chunks fill the window (rounded down to whole frames) and overlap by the stock
    default stride (a sixth of a chunk each side); a `chunk_length_s` larger than the window is refused. Each
    chunk's logits are cut to the frames of its real samples, so its padding never reaches the transcript.
    Without a `tokenizer`, the package's own is loaded.
    """

    _load_tokenizer = None  # optional for transformers.pipeline: loaded from the package below

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.tokenizer is None:
            self.tokenizer = _package_tokenizer(self.model)

    def preprocess(self, inputs: Any, chunk_length_s: float = 0, stride_length_s: Any = None) -> Iterator[dict]:
        window = self.feature_extractor.sequence_length
        rate = self.feature_extractor.sampling_rate
        align = self.model.config.inputs_to_logits_ratio
        if not chunk_length_s:
            chunk_length_s = window // align * align / rate
        elif int(round(chunk_length_s * rate / align) * align) > window:
            raise ValueError(
                f"chunk_length_s={chunk_length_s} exceeds the model's fixed window of {window} samples "
                f"({window / rate:g} s): use chunk_length_s <= {window // align * align / rate:g}"
            )
        empty = True
        for chunk in super().preprocess(inputs, chunk_length_s, stride_length_s):
            empty = False
            yield chunk
        if empty:  # an empty clip has no chunk
            check_long_enough(self.model.config, 0)

    def _forward(self, model_inputs: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        strides = model_inputs["stride"]
        strides = [strides] if isinstance(strides, tuple) else strides
        frames = [check_long_enough(self.model.config, samples) for samples, _, _ in strides]
        out = super()._forward(model_inputs, **kwargs)
        out["real_frames"] = torch.tensor(frames)
        return out

    def postprocess(self, model_outputs: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        for output in model_outputs:
            frames = int(output.pop("real_frames"))
            key = "logits" if "logits" in output else "tokens"
            output[key] = output[key][:, :frames]
        return super().postprocess(model_outputs, **kwargs)


def _package_tokenizer(model: Any) -> Any:
    """The CTC tokenizer saved beside the model's ONNX file."""
    from transformers import AutoTokenizer

    directory = Path(model.path).parent
    try:
        return AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
    except (OSError, ValueError, TypeError) as err:
        raise ModelExportError(f"No tokenizer in {directory}: pass tokenizer= to create_pipeline") from err
