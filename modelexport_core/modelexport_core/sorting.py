"""Calls sorted by input length: a pipeline batches neighbours, so sorted inputs pad (and compute) little."""

from __future__ import annotations

from typing import Any


def length_order(items: list[Any], tokenizer: Any = None) -> list[int]:
    """Indices of `items` shortest first when they are all texts (by token count with a tokenizer, one batched
    call; else by characters), else in their own order."""
    if not all(isinstance(item, str) for item in items):
        return list(range(len(items)))
    lengths = token_counts(items, tokenizer) if tokenizer is not None else [len(item) for item in items]
    return sorted(range(len(items)), key=lengths.__getitem__)


def token_counts(texts: list[str], tokenizer: Any) -> list[int]:
    """Each text's number of tokens, untruncated (through the plain tokenizer a fixed-shape wrapper holds)."""
    plain = getattr(tokenizer, "wrapped", tokenizer)
    return [len(ids) for ids in plain(texts, truncation=False, verbose=False)["input_ids"]]


class LengthSortedCalls:
    """Pipeline mixin: a call on a list of texts runs them shortest first (in tokens) and answers in the
    caller's order."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        texts = args[0] if args else None
        if not (isinstance(texts, list) and len(texts) > 1 and all(isinstance(text, str) for text in texts)):
            return super().__call__(*args, **kwargs)  # type: ignore[misc]
        order = length_order(texts, getattr(self, "tokenizer", None))
        answers = super().__call__([texts[i] for i in order], *args[1:], **kwargs)  # type: ignore[misc]
        restored: list[Any] = [None] * len(texts)
        for position, index in enumerate(order):
            restored[index] = answers[position]
        return restored


def sorted_by_length(pipeline_class: type) -> type:
    """`pipeline_class` with LengthSortedCalls in front (same name, still an instance of the stock class)."""
    return type(pipeline_class.__name__, (LengthSortedCalls, pipeline_class), {"__module__": pipeline_class.__module__})
