"""`AutoModelForONNX`: a package as the model class its task names, taking any batch size and any length its
shape buckets allow, as the PyTorch model would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.package.axes import recorded_dim_names
from modelexport_core.package.layout import find_model_file, package_task
from modelexport_core.serve.served import ServedModel, serve_package


class AutoModelForONNX:
    """`AutoModelForONNX.from_pretrained(package)` -> a callable model (ORTModel attributes, PyTorch outputs)."""

    @classmethod
    def from_pretrained(
        cls,
        package: str | Path,
        *,
        task: str | None = None,
        session_options: Any = None,
        target: str = "cpu",
        trust_remote_code: bool = False,
    ) -> AnyLengthModel:
        """The package's model for its recorded task (or `task`), on `target` (every session, buckets too)."""
        model_file = find_model_file(package)
        served = serve_package(
            task or package_task(model_file.parent), model_file, session_options, trust_remote_code, target
        )
        return AnyLengthModel(served)


class AnyLengthModel:
    """Calls of any batch size and any length up to the package's along its modality's length dim: inputs are
    padded to the fixed length (the bucket that holds them is chosen underneath), outputs cut back."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served
        self.dim_names = recorded_dim_names(served.model_file) or {}
        self.length_dim = served.modality.length_dim
        self.fixed = served.detected.shapes.get(self.length_dim or "", 0)

    def __getattr__(self, name: str) -> Any:
        if name in ("served", "dim_names", "length_dim", "fixed"):
            raise AttributeError(name)
        return getattr(self.served.adapter, name)

    def __call__(self, **inputs: Any) -> Any:
        length = self._length(inputs)
        padded = {name: self._padded(name, value) for name, value in inputs.items()}
        outputs = self.served.adapter(**padded)
        if length is None or length == self.fixed:
            return outputs
        return type(outputs)(**{name: self._cut(name, value, length) for name, value in outputs.items()})

    forward = __call__

    def _axes(self, name: str) -> list[int]:
        return [int(axis) for axis, dim in self.dim_names.get(name, {}).items() if dim == self.length_dim]

    def _length(self, inputs: dict[str, Any]) -> int | None:
        lengths = {value.shape[axis] for name, value in inputs.items() for axis in self._axes(name)}
        if not lengths:
            return None
        length = max(lengths)
        if length > self.fixed:
            raise ModelExportError(
                f"The inputs have {length} along {self.length_dim}; the package holds at most {self.fixed}: "
                "truncate them (tokenizer(..., truncation=True, max_length=...)) or export a longer size"
            )
        return length

    def _padded(self, name: str, value: Any) -> Any:
        import torch.nn.functional as F

        for axis in self._axes(name):
            missing = self.fixed - value.shape[axis]
            if missing > 0:
                pad = [0, 0] * (value.dim() - axis - 1) + [0, missing]
                value = F.pad(value, pad, value=0)  # masked out (attention mask 0), cut from the outputs
        return value

    def _cut(self, name: str, value: Any, length: int) -> Any:
        for axis in self._axes(name):
            value = value.narrow(axis, 0, length)
        return value
