"""modelexport audio plugin: ONNXFeatureExtractor, the CTC ORTModel and the audio hooks."""

from .feature_extractor import ONNXFeatureExtractor

__all__ = ["ONNXFeatureExtractor", "ORTModelForCTC"]


def __getattr__(name: str):  # the ORTModel pulls in onnxruntime and Optimum: import it only when asked
    if name == "ORTModelForCTC":
        from .modeling import ORTModelForCTC

        return ORTModelForCTC
    raise AttributeError(name)
