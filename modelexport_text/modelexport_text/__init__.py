"""modelexport text plugin: ONNXTokenizer and the text hooks."""
