"""modelexport multimodal plugin: ONNXProcessor, the document question answering ORTModel and the multimodal hooks."""

from .processor import ONNXProcessor

__all__ = ["ONNXProcessor", "ORTModelForDocumentQuestionAnswering"]


def __getattr__(name: str):  # the ORTModel pulls in onnxruntime and Optimum: import it only when asked
    if name == "ORTModelForDocumentQuestionAnswering":
        from .modeling import ORTModelForDocumentQuestionAnswering

        return ORTModelForDocumentQuestionAnswering
    raise AttributeError(name)
