"""The extension surface of modelexport: every hook a plugin may implement, one by one.

A modality plugin (text, vision, audio, multimodal, or a third party's) implements these with
``@hookimpl`` and registers its module under the entry-point group ``modelexport``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("modelexport")
hookimpl = pluggy.HookimplMarker("modelexport")


@dataclass(frozen=True)
class Modality:
    """What a plugin serves: a modality name, its pipeline tasks and the ONNX input names that identify it."""

    name: str
    tasks: tuple[str, ...]
    input_names: tuple[str, ...]


@dataclass(frozen=True)
class ExecutionTarget:
    """Where a package runs: a name, its onnxruntime provider, and how to build a session for it.

    `build_session(model, options)` returns an `onnxruntime.InferenceSession` on the target (model: a path
    or serialized bytes; options: SessionOptions core has configured). `refused_ops` maps an op type the
    target never runs to the one-line reason given to the user. `export_rewrites` are graph rewrites that
    `export --target` applies (each takes the ModelProto, edits it in place, returns how many places it changed).
    """

    name: str
    provider: str
    is_available: Callable[[], bool]
    build_session: Callable[[str | bytes, Any], Any]
    install_hint: str = ""
    refused_ops: Mapping[str, str] = field(default_factory=dict)
    export_rewrites: tuple[Callable[[Any], int], ...] = ()


@hookspec
def register_modalities() -> list[Modality]:
    """Declare the modalities this plugin serves (name, tasks, identifying input names)."""


@hookspec
def register_targets() -> list[ExecutionTarget]:
    """Declare the execution targets this plugin provides (e.g. cpu, qnn-htp) for validate / compare --target."""


@hookspec(firstresult=True)
def detect_shapes(modality: str, input_shapes: dict[str, list[int | None]]) -> dict[str, int | None] | None:
    """Name the per-modality dims (batch_size, sequence_length, height, ...) of a model's inputs; None = dynamic."""


@hookspec(firstresult=True)
def default_shapes(modality: str, package_dir: Path) -> dict[str, int] | None:
    """Give the fallback dims for a modality when a model's dims are dynamic (may read preprocessor files)."""


@hookspec
def copy_configs(modality: str, source: str, out_dir: Path, hub_kwargs: dict[str, Any]) -> list[str] | None:
    """Write this modality's preprocessor files (tokenizer, preprocessor_config.json) into out_dir; return their names."""


@hookspec(firstresult=True)
def wrap_processor(modality: str, processor: Any, shapes: dict[str, int]) -> Any | None:
    """Wrap a HF processor in this modality's fixed-shape ONNX* wrapper; None if it is not this plugin's kind."""


@hookspec(firstresult=True)
def load_processor(modality: str, processor_dir: str) -> Any | None:
    """Load the HF tokenizer / processor for `modality` from a directory (or Hub id)."""


@hookspec(firstresult=True)
def route_processor(pipeline_class: type, processor: Any) -> dict[str, Any] | None:
    """Map a processor to the transformers.pipeline keyword it belongs to, e.g. {"tokenizer": processor}."""


@hookspec(firstresult=True)
def pipeline_class(task: str, modality: str) -> type | None:
    """Offer a Pipeline subclass for a task when the stock one needs help with fixed shapes (e.g. padding tokens)."""


@hookspec(firstresult=True)
def onnx_config(config: Any, task: str) -> Any | None:
    """Supply Optimum's OnnxConfig for (model config, export task) where Optimum has none or lacks an input."""


@hookspec(firstresult=True)
def ort_model_class(task: str) -> type | None:
    """Name the ORTModel class that loads a package for `task` when Optimum has none (e.g. object detection)."""


@hookspec(firstresult=True)
def sample_inputs(modality: str, sequence_length: int) -> dict[str, list[Any]] | None:
    """Named sets of realistic raw inputs (e.g. short and full-length texts) for `modelexport benchmark`."""


@hookspec(firstresult=True)
def benchmark_kwargs(task: str) -> dict[str, dict[str, Any]] | None:
    """Keywords the benchmark passes with a task's sample inputs: {"pipeline": {...}, "processor": {...}} (e.g. labels)."""


@hookspec(firstresult=True)
def benchmark_corpus(modality: str) -> list[Any] | None:
    """A realistic, deterministic workload of raw inputs of varied size for `modelexport benchmark --corpus`."""
