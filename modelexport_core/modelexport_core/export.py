"""`export`: a HuggingFace model to a fixed-shape, hierarchy-tagged ONNX package that Optimum loads as it is."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import onnx

from . import __version__
from .errors import ExportStateError, ModelExportError
from .files import check_destination, describe_files, staged_directory
from .hierarchy import tag_model
from .metadata import build_metadata
from .package import (
    KEY_MODALITY,
    KEY_SHAPES,
    KEY_TASK,
    KEY_VERSION,
    METADATA_FILE,
    MODEL_FILE,
    io_signature,
    set_model_metadata,
)
from .plugins import hook, modality_for_inputs
from .quiet import quieted
from .source import ModelSource, load_config, local_files, resolve_source
from .targets import apply_export_rewrites, get_target
from .tasks import export_task_for, infer_task, onnx_config_for

DEFAULT_OPSET = 18
DEFAULT_BATCH_SIZE = 1
_EXTERNAL_DATA_THRESHOLD = 1_800_000_000  # protobuf's 2 GB limit, with headroom

Progress = Callable[[str], None]


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


def export(
    model: str | os.PathLike,
    out_dir: str | os.PathLike,
    task: str | None = None,
    batch_size: int | None = None,
    sequence_length: int | None = None,
    height: int | None = None,
    width: int | None = None,
    num_channels: int | None = None,
    audio_sequence_length: int | None = None,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    trust_remote_code: bool = False,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | None = None,
    validate: bool = True,
    progress: Progress | None = None,
    target: str | None = None,
) -> dict[str, Any]:
    """Export MODEL (a local directory or Hub id) into OUT_DIR; return the export metadata.

    Every input and output dim of the written model.onnx is fixed. Dims not given fall back to the
    modality plugin's defaults. `target` (e.g. "qnn-htp") applies that target's graph rewrites.
    A failed export leaves nothing behind.
    """
    timer = _Timer(progress)
    execution_target = get_target(target, require_available=False) if target else None
    out_dir = Path(out_dir).expanduser().resolve()
    source = resolve_source(model, revision, token, cache_dir, trust_remote_code)
    if source.is_local and out_dir in (Path(source.location), *Path(source.location).parents):
        raise ExportStateError(f"OUT_DIR {out_dir} holds the model being exported: choose another OUT_DIR")
    check_destination(out_dir, force)  # refuse before the slow steps
    config = load_config(source)
    if task is None:
        task = infer_task(config)
        timer.progress(f"Inferred task: {task}")
    onnx_config = onnx_config_for(config, task)
    modality = modality_for_inputs(list(onnx_config.inputs))
    requested = {
        "batch_size": batch_size,
        "sequence_length": sequence_length,
        "height": height,
        "width": width,
        "num_channels": num_channels,
        "audio_sequence_length": audio_sequence_length,
    }
    explicit = {k: v for k, v in requested.items() if v is not None}
    defaults = hook().default_shapes(modality=modality.name, package_dir=local_files(source)) or {}
    shapes = {"batch_size": DEFAULT_BATCH_SIZE, **defaults, **explicit}
    _fit_sequence_length(shapes, config, explicit=sequence_length is not None)
    with staged_directory(out_dir, force) as staging:
        with timer.step("load", f"Loading {source.display_name}"):
            torch_model = _load_model(source, task, config.model_type)
        with timer.step("export", f"Exporting to ONNX (opset {opset}, dynamo)"):
            model_proto = _export_onnx(torch_model, onnx_config, shapes, opset, explicit)
        with timer.step("tag", "Tagging nodes with their source modules"):
            hierarchy = tag_model(model_proto, torch_model)
            rewrites = apply_export_rewrites(model_proto, execution_target) if execution_target else {}
            signature = io_signature(model_proto)
            set_model_metadata(
                model_proto,
                {
                    KEY_VERSION: __version__,
                    KEY_TASK: task,
                    KEY_MODALITY: modality.name,
                    KEY_SHAPES: json.dumps({i["name"]: i["shape"] for i in signature["inputs"]}),
                },
            )
            _save_onnx(model_proto, staging / MODEL_FILE)
        with timer.step("copy", "Writing config.json and preprocessor files"):
            config.save_pretrained(staging)
            hook().copy_configs(
                modality=modality.name, source=source.location, out_dir=staging, hub_kwargs=source.hub_kwargs
            )
        with timer.step("metadata", f"Writing {METADATA_FILE}"):
            metadata = build_metadata(
                source=source.display_name,
                task=task,
                modality=modality.name,
                model_proto=model_proto,
                signature=signature,
                hierarchy=hierarchy,
                files=describe_files(staging),
                timings=timer.seconds,
            )
            if execution_target:
                metadata["target"] = {"name": execution_target.name, "rewrites": rewrites}
            (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        if validate:
            from .validate import validate_optimum_compatibility

            with timer.step("validate", "Validating with onnx.checker, onnxruntime and Optimum"):
                report = validate_optimum_compatibility(staging)
            if not report.ok:
                raise ModelExportError(f"The exported package failed validation: {report.first_failure()}")
            metadata["validation"] = {"ok": report.ok, "checks": report.to_dict()["checks"]}
        metadata["timings"] = dict(timer.seconds)
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2))  # not among its own files: safe
    return metadata


def _fit_sequence_length(shapes: dict[str, int], config: Any, explicit: bool) -> None:
    """Keep the sequence length within the model's position embeddings: cap a default, refuse a request."""
    limit = getattr(config, "max_position_embeddings", None)
    if "sequence_length" not in shapes or not isinstance(limit, int) or shapes["sequence_length"] <= limit:
        return
    if explicit:
        raise ModelExportError(
            f"--sequence-length {shapes['sequence_length']} exceeds the model's max_position_embeddings ({limit})"
        )
    shapes["sequence_length"] = limit


def _load_model(source: ModelSource, task: str, model_type: str) -> Any:
    """The PyTorch model for the task, loaded with every Hub option (Optimum's own loader drops the token)."""
    from optimum.exporters.tasks import TasksManager

    model_class = TasksManager.get_model_class_for_task(
        export_task_for(task), framework="pt", model_type=model_type, library="transformers"
    )
    with quieted():
        return model_class.from_pretrained(source.location, **source.hub_kwargs).eval()


def _export_onnx(
    torch_model: Any, onnx_config: Any, shapes: dict[str, int], opset: int, explicit: dict[str, int] | None = None
) -> onnx.ModelProto:
    """Run torch.onnx.export(dynamo=True) on Optimum's dummy inputs, under Optimum's model patcher.

    The dims the user asked for (`explicit`) win over the ones Optimum's generators take from the config.
    """
    import torch

    dummy = onnx_config.generate_dummy_inputs(framework="pt", **shapes)
    dummy = onnx_config.rename_ambiguous_inputs(dummy)
    overridden = _honour_explicit_dims(dummy, onnx_config.inputs, explicit or {})
    torch_model.config.return_dict = True
    with torch.no_grad(), onnx_config.patch_model_for_export(torch_model), quieted("torch.onnx", stdout=True):
        ordered = {name: dummy[name] for name in onnx_config.ordered_inputs(torch_model) if name in dummy}
        try:
            program = torch.onnx.export(
                torch_model,
                (),
                kwargs=ordered,
                input_names=list(ordered),
                output_names=list(onnx_config.outputs),
                opset_version=opset,
                dynamo=True,
                optimize=True,
                verbose=False,
            )
        except torch.onnx.OnnxExporterError as err:
            cause = str(err.__cause__ or err).strip().splitlines()[0]
            if not overridden:
                raise ModelExportError(f"torch.onnx.export failed for {type(torch_model).__name__}: {cause}") from err
            asked = ", ".join(f"{dim} {new} (its config gives {old})" for dim, (old, new) in overridden.items())
            raise ModelExportError(
                f"{type(torch_model).__name__} cannot be exported at {asked}: {cause} "
                "Export without those options to use the config's size."
            ) from err
    return program.model_proto


def _honour_explicit_dims(
    dummy: dict[str, Any], axes: dict[str, dict[int, str]], explicit: dict[str, int]
) -> dict[str, tuple[int, int]]:
    """Resize the dummy inputs whose named axes (Optimum's `inputs`) differ from the dims the user asked for.

    Optimum's vision generator takes height / width / channels from the config when it has `image_size`
    (ViT, YOLOS, ConvNeXt, ...) and ignores the ones asked for. The resized input holds values drawn from
    the generated one (same dtype and range). Returns each overridden dim: (generated, asked).
    """
    import torch

    overridden: dict[str, tuple[int, int]] = {}
    generator = torch.Generator().manual_seed(0)
    for name, named_axes in axes.items():
        if name not in dummy or not isinstance(dummy[name], torch.Tensor):
            continue
        shape = list(dummy[name].shape)
        for axis, dim in named_axes.items():
            if dim in explicit and axis < len(shape) and shape[axis] != explicit[dim]:
                overridden[dim] = (shape[axis], explicit[dim])
                shape[axis] = explicit[dim]
        if shape != list(dummy[name].shape):
            values = dummy[name].flatten()
            dummy[name] = values[torch.randint(values.numel(), shape, generator=generator)]
    return overridden


def _save_onnx(model_proto: onnx.ModelProto, path: Path) -> None:
    if model_proto.ByteSize() > _EXTERNAL_DATA_THRESHOLD:
        onnx.save(model_proto, path, save_as_external_data=True, location=f"{path.name}.data")
    else:
        onnx.save(model_proto, path)
