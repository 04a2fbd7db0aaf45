"""Optimum OnnxConfigs the multimodal plugin supplies where Optimum has none or names an axis apart."""

from __future__ import annotations

from optimum.exporters.onnx.model_configs import CLIPOnnxConfig, LayoutLMOnnxConfig


class CLIPZeroShotOnnxConfig(CLIPOnnxConfig):
    """CLIP's config with one name for the image batch: Optimum calls `pixel_values`' axis 0 `batch_size` but the
    same axis of its outputs `image_batch_size`; here all are `image_batch_size`, so the batch adapter joins
    `logits_per_image` [images, texts] along the axes that count images and texts."""

    @property
    def inputs(self) -> dict[str, dict[int, str]]:
        inputs = super().inputs
        inputs["pixel_values"] = {**inputs["pixel_values"], 0: "image_batch_size"}
        return inputs


class LayoutLMQuestionAnsweringOnnxConfig(LayoutLMOnnxConfig):
    """LayoutLM v1 for (document) question answering: Optimum's LayoutLM inputs (with `bbox`), start and end logits."""

    @property
    def outputs(self) -> dict[str, dict[int, str]]:
        return {
            "start_logits": {0: "batch_size", 1: "sequence_length"},
            "end_logits": {0: "batch_size", 1: "sequence_length"},
        }
