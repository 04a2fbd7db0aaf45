"""Calls sorted by input length: a pipeline batches neighbours, so sorted inputs pad (and compute) little."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Measure = Callable[[Sequence[Any]], "list[int] | None"]


def length_order(lengths: Sequence[int] | None, count: int) -> list[int]:
    """Indices of `count` items shortest first (a stable sort); their own order when `lengths` is None."""
    if lengths is None:
        return list(range(count))
    return sorted(range(count), key=lengths.__getitem__)


class LengthSortedCalls:
    """Pipeline mixin: a call on a list of inputs runs them shortest first and answers in the caller's order.

    `measure(items)` gives each item's length (the modality's `input_lengths`), or None to keep the order. A
    pipeline class that sorts some calls itself (measuring as it processes them) says which in `sorts_itself`.
    """

    measure: Measure

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        items = args[0] if args else None
        sorts_itself = getattr(super(), "sorts_itself", None)
        if not (isinstance(items, list) and len(items) > 1) or (sorts_itself and sorts_itself(*args, **kwargs)):
            return super().__call__(*args, **kwargs)  # type: ignore[misc]
        order = length_order(type(self).measure(items), len(items))
        answers = super().__call__([items[i] for i in order], *args[1:], **kwargs)  # type: ignore[misc]
        restored: list[Any] = [None] * len(items)
        for position, index in enumerate(order):
            restored[index] = answers[position]
        return restored


def sorted_by_length(pipeline_class: type, measure: Measure) -> type:
    """`pipeline_class` with LengthSortedCalls in front (same name, still an instance of the stock class)."""
    namespace = {"__module__": pipeline_class.__module__, "measure": staticmethod(measure)}
    return type(pipeline_class.__name__, (LengthSortedCalls, pipeline_class), namespace)
