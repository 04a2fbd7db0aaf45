"""Benchmark texts: short sentences (about 12 tokens) and texts that fill the fixed sequence length."""

from __future__ import annotations

SHORT_TEXTS = [
    "The weather in Paris is lovely this spring morning.",
    "Our new phone ships with a much better camera.",
    "She quickly finished the report before the deadline.",
    "This restaurant serves the best noodles in town.",
]


def sample_texts(sequence_length: int) -> dict[str, list[str]]:
    """`short` texts, and `full` texts of about `sequence_length` words (so about as many tokens)."""
    words = " ".join(SHORT_TEXTS).split()
    length = max(sequence_length - 2, 1)
    full = [" ".join((words[i:] + words[:i]) * (length // len(words) + 1)) for i in range(len(SHORT_TEXTS))]
    return {"short": SHORT_TEXTS, "full": [" ".join(text.split()[:length]) for text in full]}
