"""multimodal hooks (skeleton): the processors arrive with the multimodal issue."""
