"""The extension surface of modelexport: every hook a plugin may implement, one by one.

A plugin is a module (or object) of ``@hookimpl`` functions registered under the entry-point group
``modelexport``. Most plugins implement `register_modalities` alone: a `Modality` object carries everything
that differs between kinds of input. The other hooks are global, asked whatever the modality.
See docs/plugins.md for a guide and a complete example.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from modelexport_core.plugins.modality import Modality
from modelexport_core.targets.target import ExecutionTarget

hookspec = pluggy.HookspecMarker("modelexport")
hookimpl = pluggy.HookimplMarker("modelexport")


@hookspec
def register_modalities(register: Callable[[Modality], None]) -> None:
    """Register each modality this plugin serves: `register(MyModality())`."""


@hookspec
def register_targets(register: Callable[[ExecutionTarget], None]) -> None:
    """Register each execution target this plugin provides: `register(ExecutionTarget(...))`."""


@hookspec(firstresult=True)
def onnx_config(config: Any, task: str) -> Any | None:
    """Supply Optimum's OnnxConfig for (model config, export task) where Optimum has none or lacks an input."""


@hookspec(firstresult=True)
def ort_model_class(task: str) -> type | None:
    """Name the ORTModel class that loads a package for `task` when Optimum has none (e.g. object detection)."""


@hookspec(firstresult=True)
def route_processor(pipeline_class: type, processor: Any) -> dict[str, Any] | None:
    """Map a processor to the transformers.pipeline keywords it fills for `pipeline_class`, e.g. {"tokenizer": p}."""
