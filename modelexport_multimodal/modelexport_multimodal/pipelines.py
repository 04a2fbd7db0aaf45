"""Pipeline classes that let the stock pipelines take fixed-shape processor wrappers."""

from __future__ import annotations

from typing import Any

from transformers import DocumentQuestionAnsweringPipeline


class FixedLengthDocumentQuestionAnsweringPipeline(DocumentQuestionAnsweringPipeline):
    """Document question answering over an `ONNXTokenizer`: the stock pipeline refuses any tokenizer whose class
    name does not end with "Fast"; here the check sees the fast tokenizer the wrapper holds, and the wrapper
    tokenizes (so every span is the fixed length, and the pipeline's stride serves longer documents)."""

    def __init__(self, *args: Any, tokenizer: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, tokenizer=getattr(tokenizer, "wrapped", tokenizer), **kwargs)
        self.tokenizer = tokenizer
