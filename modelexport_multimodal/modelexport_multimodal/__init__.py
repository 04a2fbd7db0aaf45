"""modelexport multimodal plugin: ONNXProcessor, the document question answering ORTModel and the multimodal hooks."""

from modelexport_multimodal.modality import DocumentModality, ImageTextModality
from modelexport_multimodal.processor import ONNXProcessor

__all__ = ["DocumentModality", "ImageTextModality", "ONNXProcessor", "ORTModelForDocumentQuestionAnswering"]


def __getattr__(name: str):  # the ORTModel pulls in onnxruntime and Optimum: import it only when asked
    if name == "ORTModelForDocumentQuestionAnswering":
        from modelexport_multimodal.modeling import ORTModelForDocumentQuestionAnswering

        return ORTModelForDocumentQuestionAnswering
    raise AttributeError(name)
