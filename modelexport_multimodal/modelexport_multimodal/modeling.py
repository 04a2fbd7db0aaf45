"""`ORTModelForDocumentQuestionAnswering`: the ORTModel for LayoutLM v1 document question answering.

Optimum's `ORTModelForQuestionAnswering` feeds only input_ids, attention_mask and token_type_ids, so a LayoutLM
graph would lack its `bbox` input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from optimum.onnxruntime import ORTModelForCustomTasks
from transformers import AutoModelForDocumentQuestionAnswering
from transformers.modeling_outputs import QuestionAnsweringModelOutput


class ORTModelForDocumentQuestionAnswering(ORTModelForCustomTasks):
    """ONNX Runtime model for extractive document question answering (LayoutLM v1): input_ids, bbox, attention_mask
    and token_type_ids in, `start_logits` and `end_logits` out, as `DocumentQuestionAnsweringPipeline` reads them.
    """

    auto_model_class = AutoModelForDocumentQuestionAnswering

    def forward(
        self,
        input_ids: torch.Tensor | np.ndarray,
        bbox: torch.Tensor | np.ndarray,
        attention_mask: torch.Tensor | np.ndarray | None = None,
        token_type_ids: torch.Tensor | np.ndarray | None = None,
        *,
        return_dict: bool = True,
        **kwargs: Any,
    ) -> QuestionAnsweringModelOutput | tuple[Any, ...]:
        backend = torch if isinstance(input_ids, torch.Tensor) else np
        given = {
            "input_ids": input_ids,
            "bbox": bbox,
            "attention_mask": backend.ones_like(input_ids) if attention_mask is None else attention_mask,
            "token_type_ids": backend.zeros_like(input_ids) if token_type_ids is None else token_type_ids,
        }
        outputs = super().forward(**{name: given[name] for name in self.input_names if name in given})
        result = QuestionAnsweringModelOutput(start_logits=outputs["start_logits"], end_logits=outputs["end_logits"])
        return result if return_dict else result.to_tuple()
