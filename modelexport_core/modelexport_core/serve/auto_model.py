"""`AutoModelForONNX`: a package as the model class its task names, taking any batch size and any size its shape
buckets allow along every dim that is not fixed by the model itself, as the PyTorch model would."""

from __future__ import annotations

import ast
import operator
import warnings
from pathlib import Path
from typing import Any

from modelexport_core.errors import FixedShapeWarning, ModelExportError
from modelexport_core.package.axes import BATCH_SUFFIX, DimNames, recorded_dim_names
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
        share_sessions: bool = True,
    ) -> AnyLengthModel:
        """The package's model for its recorded task (or `task`), on `target` (every session, buckets too; shared
        as `create_pipeline` shares them)."""
        model_file = find_model_file(package)
        task = task or _recorded_or_inferred_task(model_file, trust_remote_code)
        served = serve_package(task, model_file, session_options, trust_remote_code, target, True, share_sessions)
        return AnyLengthModel(served)


def _recorded_or_inferred_task(model_file: Path, trust_remote_code: bool) -> str:
    """The package's recorded task; for a plain Optimum export, the task its config's architecture names (said)."""
    from transformers import AutoConfig

    from modelexport_core.errors import remote_code_refused
    from modelexport_core.exporter.tasks import infer_task

    try:
        return package_task(model_file.parent)
    except ModelExportError:  # a plain Optimum export: no task recorded
        pass
    with remote_code_refused(f"The package {model_file.parent}"):
        config = AutoConfig.from_pretrained(model_file.parent, trust_remote_code=trust_remote_code)
    task = infer_task(config)
    warnings.warn(
        f"{model_file.parent} does not record its task: serving it as {task} (from config.json's "
        f"{', '.join(config.architectures or [])}); pass task= to choose another",
        FixedShapeWarning,
        stacklevel=3,
    )
    return task


class AnyLengthModel:
    """Calls of any batch size and any size up to the package's along the dims of the mask input (tokens,
    samples): inputs are padded with zeros to the package's shapes (masked out; the bucket that holds them is
    chosen underneath) and every output is cut back to the size its recorded dim name gives for the inputs' sizes.
    Other dims (an image's height) must be the package's."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served
        names = recorded_dim_names(served.model_file) or _positional_names(served)
        fixed = served.detected.input_shapes
        self.input_dims = {k: _sized_axes(v) for k, v in names.items() if k in fixed}
        self.output_dims = {k: _sized_axes(v) for k, v in names.items() if k not in fixed}
        self.fixed = {dim: fixed[k][axis] for k, axes in self.input_dims.items() for axis, dim in axes.items()}
        self.padded_dims = set(self.input_dims.get(served.modality.mask_input or "", {}).values())

    def __getattr__(self, name: str) -> Any:
        if name in ("served", "input_dims", "output_dims", "fixed", "padded_dims"):
            raise AttributeError(name)
        return getattr(self.served.adapter, name)

    def __call__(self, **inputs: Any) -> Any:
        sizes = self._sizes(inputs)
        padded = {name: self._padded(name, value) for name, value in inputs.items()}
        outputs = self.served.adapter(**padded)
        if all(sizes[dim] == self.fixed[dim] for dim in sizes):
            return outputs
        return type(outputs)(**{name: self._cut(name, value, sizes) for name, value in outputs.items()})

    forward = __call__

    def _sizes(self, inputs: dict[str, Any]) -> dict[str, int]:
        """Each named dim's size in `inputs` (the largest over the inputs carrying it), checked against the package."""
        sizes: dict[str, int] = {}
        for name, axes in self.input_dims.items():
            for axis, dim in axes.items():
                if name in inputs and inputs[name] is not None:
                    sizes[dim] = max(sizes.get(dim, 0), inputs[name].shape[axis])
        for dim, size in sizes.items():
            if size > self.fixed[dim]:
                raise ModelExportError(
                    f"The inputs have {size} along {dim}; the package holds at most {self.fixed[dim]}: "
                    "truncate them (tokenizer(..., truncation=True, max_length=...)) or export a larger size"
                )
            if size < self.fixed[dim] and dim not in self.padded_dims:
                raise ModelExportError(
                    f"The inputs have {size} along {dim}; the package takes exactly {self.fixed[dim]}: "
                    "prepare them with ONNXAutoProcessor.from_model(package)"
                )
        return sizes

    def _padded(self, name: str, value: Any) -> Any:
        import torch.nn.functional as F

        for axis, dim in self.input_dims.get(name, {}).items():
            missing = self.fixed[dim] - value.shape[axis]
            if missing > 0 and dim in self.padded_dims:
                pad = [0, 0] * (value.dim() - axis - 1) + [0, missing]
                value = F.pad(value, pad, value=0)  # masked out (attention mask 0), cut from the outputs
        return value

    def _cut(self, name: str, value: Any, sizes: dict[str, int]) -> Any:
        for axis, dim in self.output_dims.get(name, {}).items():
            size = _evaluated(dim, sizes)
            if size is not None and size < value.shape[axis]:
                value = value.narrow(axis, 0, size)
        return value


def _sized_axes(named: dict[str, str]) -> dict[int, str]:
    """The axes a call may size (every named axis but the batch axes, which the fixed-batch adapter handles)."""
    return {int(axis): dim for axis, dim in named.items() if not dim.endswith(BATCH_SUFFIX)}


def _positional_names(served: ServedModel) -> DimNames:
    """For a package recording no dim names: axis 1 of every input is the modality's length dim, if it has one."""
    length = served.modality.length_dim
    if length is None or served.modality.mask_input is None:
        return {}
    return {name: {"1": length} for name, shape in served.detected.input_shapes.items() if len(shape) > 1}


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}


def _evaluated(dim: str, sizes: dict[str, int]) -> int | None:
    """An output dim's size for these input sizes: a dim name, or the exporter's arithmetic on dim names
    (`(sequence_length - 10) // 5 + 1`); None when it names anything else (e.g. num_queries)."""

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Name) and node.id in sizes:
            return sizes[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](value(node.left), value(node.right))
        raise ValueError(dim)

    try:
        return value(ast.parse(dim, mode="eval"))
    except (SyntaxError, ValueError):
        return None
