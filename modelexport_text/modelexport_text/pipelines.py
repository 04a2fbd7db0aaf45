"""Pipeline classes that keep the stock behaviour on fixed-length inputs."""

from __future__ import annotations

from typing import Any

from transformers import FeatureExtractionPipeline


class FixedLengthFeatureExtractionPipeline(FeatureExtractionPipeline):
    """Feature extraction that returns the vectors of the real tokens only, never of fixed-length padding."""

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        outputs = self.model(**model_inputs)
        return {"features": outputs[0], "attention_mask": model_inputs["attention_mask"]}

    def postprocess(self, model_outputs: dict[str, Any], return_tensors: bool = False) -> Any:
        real_tokens = int(model_outputs["attention_mask"][0].sum())  # right padding
        features = model_outputs["features"][:, :real_tokens]
        return features if return_tensors else features.tolist()
