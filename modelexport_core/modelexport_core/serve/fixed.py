"""What every fixed-shape wrapper shares: the wrapped processor, its shapes, delegation, truncation warnings."""

from __future__ import annotations

import warnings
from typing import Any

from modelexport_core.errors import FixedShapeWarning

_OWN_ATTRIBUTES = frozenset({"wrapped", "shapes", "shape_source"})


def warn_truncated(what: str, length: int, limit: int) -> None:
    """Warn that an input of `length` was truncated to the fixed `limit`."""
    warnings.warn(f"{what} of length {length} was truncated to the fixed {limit}", FixedShapeWarning, stacklevel=3)


class FixedShapeProcessor:
    """Base of the ONNX* wrappers: makes inputs fit fixed shapes, behaves as the wrapped processor otherwise.

    `shapes` holds the named fixed dims (batch_size, sequence_length, height, ...) and `shape_source`
    says where they were detected (export_metadata, metadata_props, graph, session, defaults, given).
    """

    def __init__(self, wrapped: Any, shapes: dict[str, int], shape_source: str = "given") -> None:
        object.__setattr__(self, "wrapped", wrapped)
        object.__setattr__(self, "shapes", dict(shapes))
        object.__setattr__(self, "shape_source", shape_source)

    @property
    def batch_size(self) -> int:
        return self.shapes["batch_size"]

    def __getattr__(self, name: str) -> Any:
        if name in _OWN_ATTRIBUTES:  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN_ATTRIBUTES or hasattr(type(self), name):
            object.__setattr__(self, name, value)
        else:
            setattr(self.wrapped, name, value)

    def for_buckets(self, lengths: list[int]) -> FixedShapeProcessor:
        """The wrapper to serve a package with shape buckets of these sizes along the modality's length dim.

        A modality's wrapper may pad each call to the smallest size holding it (text: tokens, audio: samples); this
        default keeps the full fixed shape, and the bucketed model cuts the inputs to the bucket it runs.
        """
        return self

    def save_pretrained(self, *args: Any, **kwargs: Any) -> Any:
        """Save the wrapped processor, loadable back as its original class."""
        return self.wrapped.save_pretrained(*args, **kwargs)

    def __repr__(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in self.shapes.items())
        return f"{type(self).__name__}({dims}, source={self.shape_source}, wrapping {type(self.wrapped).__name__})"
