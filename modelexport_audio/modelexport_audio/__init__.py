"""modelexport audio plugin: ONNXFeatureExtractor, the CTC ORTModel and the audio hooks."""

from modelexport_audio.feature_extractor import ONNXFeatureExtractor
from modelexport_audio.modality import AudioModality

__all__ = ["AudioModality", "ONNXFeatureExtractor", "ORTModelForCTC"]


def __getattr__(name: str):  # the ORTModel pulls in onnxruntime and Optimum: import it only when asked
    if name == "ORTModelForCTC":
        from modelexport_audio.modeling import ORTModelForCTC

        return ORTModelForCTC
    raise AttributeError(name)
