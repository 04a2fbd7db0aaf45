"""Core's built-in plugin, registered like any other: the `cpu` target and routing by transformers base class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelexport_core.plugins.hookspecs import hookimpl
from modelexport_core.serve.routing import route_by_base_class
from modelexport_core.targets.cpu import CPU
from modelexport_core.targets.target import ExecutionTarget


@hookimpl
def register_targets(register: Callable[[ExecutionTarget], None]) -> None:
    register(CPU)


@hookimpl(trylast=True)
def route_processor(pipeline_class: type, processor: Any) -> dict[str, Any] | None:
    return route_by_base_class(pipeline_class, processor)
