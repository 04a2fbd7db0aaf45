"""`ORTModelForObjectDetection`: the ORTModel for object detection that Optimum itself does not ship."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from optimum.onnxruntime import ORTModel
from transformers import AutoModelForObjectDetection
from transformers.utils import ModelOutput


@dataclass
class ObjectDetectionOutput(ModelOutput):
    """What DETR-style post-processing (`post_process_object_detection`) reads: class logits and boxes.

    `logits` is [batch, queries, classes + 1]; `pred_boxes` is [batch, queries, 4], normalized
    (center_x, center_y, width, height) relative to the image the model saw.
    """

    logits: torch.Tensor | np.ndarray | None = None
    pred_boxes: torch.Tensor | np.ndarray | None = None
    last_hidden_state: torch.Tensor | np.ndarray | None = None


class ORTModelForObjectDetection(ORTModel):
    """ONNX Runtime model for object detection (DETR, YOLOS, Table Transformer, ...): `pixel_values` in,
    `logits` and `pred_boxes` out, so `ObjectDetectionPipeline` and the image processor's
    `post_process_object_detection` use it as the PyTorch model.

    Inputs the graph does not take (e.g. the `pixel_mask` of DETR's processor, all ones on a fixed-shape
    image) are ignored.
    """

    auto_model_class = AutoModelForObjectDetection

    def forward(
        self,
        pixel_values: torch.Tensor | np.ndarray,
        pixel_mask: torch.Tensor | np.ndarray | None = None,
        *,
        return_dict: bool = True,
        **kwargs: Any,
    ) -> ObjectDetectionOutput | tuple[Any, ...]:
        use_torch = isinstance(pixel_values, torch.Tensor)
        self.raise_on_numpy_input_io_binding(use_torch)
        model_inputs = {"pixel_values": pixel_values, "pixel_mask": pixel_mask, **kwargs}
        model_inputs = {name: model_inputs.get(name) for name in self.input_names}
        if self.use_io_binding:
            output_shapes, output_buffers = self._prepare_io_binding(model_inputs)
            if self.device.type == "cpu":
                self.session.run_with_iobinding(self._io_binding)
            else:
                self._io_binding.synchronize_inputs()
                self.session.run_with_iobinding(self._io_binding)
                self._io_binding.synchronize_outputs()
            outputs = {name: output_buffers[name].view(shape) for name, shape in output_shapes.items()}
        else:
            onnx_outputs = self.session.run(None, self._prepare_onnx_inputs(use_torch, model_inputs))
            outputs = self._prepare_onnx_outputs(use_torch, onnx_outputs)
        result = ObjectDetectionOutput(
            **{k: v for k, v in outputs.items() if k in ObjectDetectionOutput.__dataclass_fields__}
        )
        return result if return_dict else result.to_tuple()
