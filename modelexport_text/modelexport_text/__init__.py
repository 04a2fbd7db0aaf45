"""modelexport text plugin: ONNXTokenizer and the text modality."""

from modelexport_text.modality import TextModality
from modelexport_text.tokenizer import ONNXTokenizer

__all__ = ["ONNXTokenizer", "TextModality"]
