"""`ORTModelForCTC`: Optimum's CTC model with what speech-recognition pipelines need from it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from optimum.onnxruntime import ORTModelForCTC as OptimumORTModelForCTC
from optimum.onnxruntime import ORTModelForCustomTasks
from transformers.modeling_outputs import CausalLMOutput


class ORTModelForCTC(OptimumORTModelForCTC):
    """Optimum's `ORTModelForCTC` with `main_input_name` (transformers' and Optimum's ASR pipelines read it; Optimum's
    class has none, so both crash) and `attention_mask` fed to graphs that take one (Optimum's drops it).

    Without a mask, a graph that takes one gets a mask of ones (every sample real), as the PyTorch model assumes.
    """

    main_input_name = "input_values"

    def forward(
        self,
        input_values: torch.Tensor | np.ndarray | None = None,
        attention_mask: torch.Tensor | np.ndarray | None = None,
        *,
        return_dict: bool = True,
        **kwargs: Any,
    ) -> CausalLMOutput | tuple[Any, ...]:
        self._warn_on_unhandled_inputs(kwargs)
        if attention_mask is None and input_values is not None:
            ones = torch.ones_like if isinstance(input_values, torch.Tensor) else np.ones_like
            attention_mask = ones(input_values, dtype=torch.int64 if ones is torch.ones_like else np.int64)
        given = {"input_values": input_values, "attention_mask": attention_mask}
        outputs = ORTModelForCustomTasks.forward(self, **{name: given[name] for name in self.input_names})
        result = CausalLMOutput(logits=outputs["logits"])
        return result if return_dict else result.to_tuple()
