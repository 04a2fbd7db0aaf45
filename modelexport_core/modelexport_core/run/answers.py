"""A pipeline's answer for one input as output columns: label/score, spans, vectors, transcripts."""

from __future__ import annotations

from typing import Any

import numpy as np

VECTOR_COLUMN = "embedding"  # feature extraction: the pipeline's nested lists of floats


def answer_columns(answer: Any, taken: set[str]) -> dict[str, Any]:
    """A dict answer's keys as columns ({"label", "score"}; ASR's {"text"}); a list of dicts (top-k labels,
    token spans, boxes) as one column per key holding the list of its values; numbers (vectors) as `embedding`.
    A key that an input column already takes is prefixed `answer_`."""
    if isinstance(answer, dict):
        columns = dict(answer)
    elif isinstance(answer, list) and answer and all(isinstance(item, dict) for item in answer):
        columns = {key: [item.get(key) for item in answer] for key in answer[0]}
    else:
        columns = {VECTOR_COLUMN: answer}
    return {(f"answer_{key}" if key in taken else key): _plain(value) for key, value in columns.items()}


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists (JSON and Arrow take them)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list) and value and not isinstance(value[0], (int, float, str)):
        return [_plain(item) for item in value]
    return value  # a list of plain numbers (a vector) as it is
