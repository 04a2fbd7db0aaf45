"""modelexport text plugin: ONNXTokenizer and the text hooks."""

from .tokenizer import ONNXTokenizer

__all__ = ["ONNXTokenizer"]
