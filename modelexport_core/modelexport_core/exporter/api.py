"""`export`: a HuggingFace model to a fixed-shape, hierarchy-tagged ONNX package that Optimum loads as it is.

`export()` decides everything it can before the slow steps (an `ExportPlan`), then runs the steps one by one
in a staging directory: load, export and tag every graph, target rewrites, int8, save, configs, validation,
and `export_metadata.json`, written once at the end.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from modelexport_core import __version__
from modelexport_core.errors import ExportStateError, ModelExportError
from modelexport_core.exporter.dims import ExportDims, resolve_dims
from modelexport_core.exporter.onnx_export import export_onnx, load_model, save_onnx
from modelexport_core.exporter.source import ModelSource, load_config, local_files, resolve_source
from modelexport_core.exporter.tagging import tag_model
from modelexport_core.exporter.tasks import infer_task, onnx_config_for
from modelexport_core.package.axes import dim_names_of
from modelexport_core.package.binding import write_bound_metadata
from modelexport_core.package.buckets import KEY_BUCKETS, bucket_file
from modelexport_core.package.files import check_destination, describe_files, staged_directory
from modelexport_core.package.layout import (
    KEY_DIM_NAMES,
    KEY_MODALITY,
    KEY_SHAPES,
    KEY_TASK,
    KEY_VERSION,
    METADATA_FILE,
    MODEL_FILE,
    io_signature,
    set_model_metadata,
)
from modelexport_core.package.metadata import build_metadata
from modelexport_core.package.shared_weights import save_sharing_weights
from modelexport_core.package.validate import validate_optimum_compatibility
from modelexport_core.plugins.manager import modality_for_inputs
from modelexport_core.plugins.modality import Modality
from modelexport_core.quantize.gate import DEFAULT_MIN_AGREEMENT, describe_quantization, quantize_with_gate
from modelexport_core.quantize.precisions import get_precision
from modelexport_core.targets.registry import apply_export_rewrites, get_target
from modelexport_core.targets.target import ExecutionTarget

DEFAULT_OPSET = MIN_OPSET = 18  # the dynamo exporter's lowest
MAX_OPSET = 23  # torch 2.13's ONNX_MAX_OPSET: higher ones fail in its version converter

Progress = Callable[[str], None]
Graphs = dict[str, onnx.ModelProto]  # file name -> graph; model.onnx (the largest) first


class _Timer:
    """Times named steps and reports each as it starts."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress or (lambda message: None)
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str, message: str) -> Iterator[None]:
        self.progress(message)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)


@dataclass(frozen=True)
class ExportOptions:
    """How to export, beyond what and at which shapes."""

    opset: int = DEFAULT_OPSET
    validate: bool = True
    quantize: str | None = None  # the precision: int8, w8a16, w8a8 or fp16
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    target: ExecutionTarget | None = None


@dataclass(frozen=True)
class ExportPlan:
    """Everything decided before the slow steps: the source, its task and modality, the dims of every graph."""

    source: ModelSource
    config: Any
    task: str
    onnx_config: Any
    modality: Modality
    dims: ExportDims
    options: ExportOptions


def export(
    model: str | os.PathLike,
    out_dir: str | os.PathLike,
    task: str | None = None,
    *,
    batch_size: int | list[int] | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    trust_remote_code: bool = False,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | None = None,
    validate: bool = True,
    quantize: str | None = None,
    dtype: str = "fp32",
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    target: str | None = None,
    progress: Progress | None = None,
    **dims: int | list[int] | None,
) -> dict[str, Any]:
    """Export MODEL (a local directory or Hub id) into OUT_DIR; return the export metadata.

    Every input and output dim of the written model.onnx is fixed. `dims` are the modality's named dims
    (`sequence_length=16`, `height=480`, `audio_sequence_length=16000`, ...); its length dim and `batch_size` may
    take a list (shape buckets: one graph per pair of sizes, sharing one weights file; model.onnx is the
    largest). `input_shapes` fixes whole inputs by name (CLIP's images and texts get batches of their own). Dims
    not given fall back to the modality's defaults. `target` (e.g. "qnn-htp") applies that target's graph
    rewrites to every graph.
    `quantize` lowers the precision of every graph: "int8" (dynamic, for CPUs), "w8a16" or "w8a8" (static QDQ
    calibrated on the modality's corpus, for NPUs); `dtype="fp16"` halves the float graph. Each keeps the modules
    most sensitive to it at higher precision until the graphs agree with fp32 to `min_agreement` on inputs held
    out from calibration (else a ModelExportError). A failed export leaves nothing behind.
    """
    quantize = _precision_name(quantize, dtype)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ModelExportError(
            f"--opset takes {MIN_OPSET} to {MAX_OPSET} (what torch's ONNX exporter writes), not {opset}"
        )
    options = ExportOptions(opset, validate, quantize, min_agreement, get_target(target, False) if target else None)
    timer = _Timer(progress)
    source = resolve_source(model, revision, token, cache_dir, trust_remote_code)
    destination = _destination(Path(out_dir), source, force)
    plan = _plan(source, task, {"batch_size": batch_size, **dims}, input_shapes or {}, options, timer)
    with staged_directory(destination, force) as staging, _disk_errors(destination):
        return _write_package(plan, staging, timer)


@contextlib.contextmanager
def _disk_errors(destination: Path) -> Iterator[None]:
    """A full disk or quota while writing the package: one line naming where."""
    try:
        yield
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        raise ExportStateError(f"Cannot write the package beside {destination}: {err.strerror}") from err


def _precision_name(quantize: str | None, dtype: str) -> str | None:
    if dtype not in ("fp32", "fp16"):
        raise ModelExportError(f"--dtype takes fp32 or fp16, not {dtype!r}")
    if dtype == "fp16" and quantize:
        raise ModelExportError("--dtype fp16 and --quantize exclude each other: choose one precision")
    return get_precision(quantize).name if quantize else ("fp16" if dtype == "fp16" else None)


def _destination(out_dir: Path, source: ModelSource, force: bool) -> Path:
    """OUT_DIR, absolute, refused before the slow steps when it cannot be written."""
    out_dir = out_dir.expanduser().resolve()
    if source.is_local and out_dir in (Path(source.location), *Path(source.location).parents):
        raise ExportStateError(f"OUT_DIR {out_dir} holds the model being exported: choose another OUT_DIR")
    check_destination(out_dir, force)
    return out_dir


def _plan(
    source: ModelSource,
    task: str | None,
    requested: dict[str, Any],
    input_shapes: dict[str, list[int]],
    options: ExportOptions,
    timer: _Timer,
) -> ExportPlan:
    config = load_config(source)
    if task is None:
        task = infer_task(config)
        timer.progress(f"Inferred task: {task}")
    onnx_config = onnx_config_for(config, task)
    modality = modality_for_inputs(list(onnx_config.inputs))
    dims = resolve_dims(modality, onnx_config, config, requested, input_shapes, local_files(source))
    return ExportPlan(source, config, task, onnx_config, modality, dims, options)


def _write_package(plan: ExportPlan, staging: Path, timer: _Timer) -> dict[str, Any]:
    """Run every step into `staging`; the metadata they record."""
    with timer.step("load", f"Loading {plan.source.display_name}"):
        torch_model = load_model(plan.source, plan.task, plan.config.model_type)
    graphs, hierarchy = _export_graphs(plan, torch_model, timer)
    extra: dict[str, Any] = {}
    if plan.options.target:
        extra["target"] = _apply_target(plan.options.target, graphs, timer)
    if plan.options.quantize:
        graphs, extra["quantization"] = _quantize(plan, graphs, timer)
    buckets = {name: _input_shapes(graph) for name, graph in graphs.items()} if len(graphs) > 1 else {}
    dim_names = dim_names_of({**plan.onnx_config.inputs, **plan.onnx_config.outputs})
    with timer.step("save", f"Writing {', '.join(graphs)}"):
        _set_graph_metadata(plan, graphs, dim_names, buckets)
        if buckets:
            extra.update(buckets=buckets, shared_weights=save_sharing_weights(graphs, staging))
        else:
            save_onnx(graphs[MODEL_FILE], staging / MODEL_FILE)
    with timer.step("copy", "Writing config.json and preprocessor files"):
        plan.config.save_pretrained(staging)
        plan.modality.save_preprocessor(plan.source.location, staging, plan.source.hub_kwargs)
    metadata = build_metadata(
        source=plan.source.display_name,
        task=plan.task,
        modality=plan.modality.name,
        model_proto=graphs[MODEL_FILE],
        signature=io_signature(graphs[MODEL_FILE]),
        hierarchy=hierarchy,
        files=describe_files(staging),
        timings={},
        dim_names=dim_names,
    )
    metadata.update(extra)
    if plan.options.validate:
        metadata["validation"] = _validate(staging, metadata, plan.source.hub_kwargs["trust_remote_code"], timer)
    metadata["timings"] = dict(timer.seconds)
    timer.progress(f"Writing {METADATA_FILE}")
    write_bound_metadata(staging, metadata)
    return metadata


def _export_graphs(plan: ExportPlan, torch_model: Any, timer: _Timer) -> tuple[Graphs, dict[str, Any]]:
    """model.onnx at the largest dims, then one graph per other (batch size, length) pair; every node tagged."""
    dims, opset = plan.dims, plan.options.opset
    with timer.step("export", f"Exporting to ONNX (opset {opset}, dynamo)"):
        largest = export_onnx(torch_model, plan.onnx_config, dims.shapes, opset, dims.explicit, dims.input_shapes)
    with timer.step("tag", "Tagging nodes with their source modules"):
        hierarchy = tag_model(largest, torch_model)
    graphs = {MODEL_FILE: largest}
    smaller = dims.graphs()
    if smaller:
        named = ", ".join(bucket_file(batch, length) for batch, length in smaller)
        with timer.step("buckets", f"Exporting and tagging the shape buckets {named}"):
            for batch, length in smaller:
                shapes, explicit = dims.at(batch, length)
                graph = export_onnx(torch_model, plan.onnx_config, shapes, opset, explicit)
                tag_model(graph, torch_model)
                graphs[bucket_file(batch, length)] = graph
    return graphs, hierarchy


def _apply_target(target: ExecutionTarget, graphs: Graphs, timer: _Timer) -> dict[str, Any]:
    with timer.step("rewrite", f"Applying the {target.name} target's graph rewrites"):
        rewrites = {name: apply_export_rewrites(graph, target) for name, graph in graphs.items()}
    return {"name": target.name, "rewrites": rewrites[MODEL_FILE]}


def _quantize(plan: ExportPlan, graphs: Graphs, timer: _Timer) -> tuple[Graphs, dict[str, Any]]:
    precision = get_precision(plan.options.quantize or "")
    with timer.step("quantize", f"Converting to {precision.name} and measuring its agreement with fp32"):
        trust = plan.source.hub_kwargs["trust_remote_code"]
        quantized, report = quantize_with_gate(
            graphs, plan.task, plan.modality, plan.source.location, plan.options.min_agreement, precision, trust
        )
    timer.progress(describe_quantization(report))
    return quantized, report


def _set_graph_metadata(plan: ExportPlan, graphs: Graphs, dim_names: dict[str, Any], buckets: dict[str, Any]) -> None:
    """The model-level metadata_props that let a lone graph describe itself."""
    for graph in graphs.values():
        props = {KEY_VERSION: __version__, KEY_TASK: plan.task, KEY_MODALITY: plan.modality.name}
        props[KEY_DIM_NAMES] = json.dumps(dim_names)
        props[KEY_SHAPES] = json.dumps(_input_shapes(graph))
        set_model_metadata(graph, {**props, KEY_BUCKETS: json.dumps(buckets)} if buckets else props)


def _validate(staging: Path, metadata: dict[str, Any], trust_remote_code: bool, timer: _Timer) -> dict[str, Any]:
    with timer.step("validate", "Validating with onnx.checker, onnxruntime and Optimum"):
        report = validate_optimum_compatibility(staging, metadata, trust_remote_code=trust_remote_code)
    if not report.ok:
        raise ModelExportError(f"The exported package failed validation: {report.first_failure()}")
    return {"ok": report.ok, "checks": report.to_dict()["checks"]}


def _input_shapes(graph: onnx.ModelProto) -> dict[str, list[int | None]]:
    return {i["name"]: i["shape"] for i in io_signature(graph)["inputs"]}
