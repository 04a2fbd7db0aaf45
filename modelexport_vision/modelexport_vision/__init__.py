"""modelexport vision plugin: ONNXImageProcessor, the object-detection ORTModel and the vision hooks."""

from .processor import ONNXImageProcessor

__all__ = ["ONNXImageProcessor", "ORTModelForObjectDetection"]


def __getattr__(name: str):  # the ORTModel pulls in onnxruntime and Optimum: import it only when asked
    if name == "ORTModelForObjectDetection":
        from .modeling import ORTModelForObjectDetection

        return ORTModelForObjectDetection
    raise AttributeError(name)
