"""modelexport vision plugin: ONNXImageProcessor, the object-detection ORTModel and the vision hooks."""

from modelexport_vision.modality import VisionModality
from modelexport_vision.processor import ONNXImageProcessor

__all__ = ["ONNXImageProcessor", "ORTModelForObjectDetection", "VisionModality"]


def __getattr__(name: str):  # the ORTModel pulls in onnxruntime and Optimum: import it only when asked
    if name == "ORTModelForObjectDetection":
        from modelexport_vision.modeling import ORTModelForObjectDetection

        return ORTModelForObjectDetection
    raise AttributeError(name)
