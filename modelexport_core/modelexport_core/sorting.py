"""Calls sorted by input length: a pipeline batches neighbours, so sorted inputs pad (and compute) little."""

from __future__ import annotations

from typing import Any


class LengthSortedCalls:
    """Pipeline mixin: a call on a list of texts runs them shortest first and answers in the caller's order."""

    def __call__(self, inputs: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not (isinstance(inputs, list) and len(inputs) > 1 and all(isinstance(text, str) for text in inputs)):
            return super().__call__(inputs, *args, **kwargs)  # type: ignore[misc]
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        answers = super().__call__([inputs[i] for i in order], *args, **kwargs)  # type: ignore[misc]
        restored: list[Any] = [None] * len(inputs)
        for position, index in enumerate(order):
            restored[index] = answers[position]
        return restored


def sorted_by_length(pipeline_class: type) -> type:
    """`pipeline_class` with LengthSortedCalls in front (same name, still an instance of the stock class)."""
    return type(pipeline_class.__name__, (LengthSortedCalls, pipeline_class), {"__module__": pipeline_class.__module__})
