"""`export`: a HuggingFace model to a fixed-shape, hierarchy-tagged ONNX package that Optimum loads as it is."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import onnx

from . import __version__
from .accuracy_gate import DEFAULT_MIN_AGREEMENT, quantize_with_gate
from .batching import dim_names_of
from .buckets import KEY_BUCKETS, bucket_file, bucket_lengths
from .errors import ExportStateError, ModelExportError
from .files import check_destination, describe_files, staged_directory
from .hierarchy import tag_model
from .input_shapes import check_ranks, named_dims
from .metadata import build_metadata
from .package import (
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
from .plugins import hook, modality_for_inputs
from .quiet import quieted
from .shared_weights import save_sharing_weights
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
    sequence_length: int | Sequence[int] | None = None,
    height: int | None = None,
    width: int | None = None,
    num_channels: int | None = None,
    audio_sequence_length: int | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    trust_remote_code: bool = False,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | None = None,
    validate: bool = True,
    quantize: str | None = None,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    progress: Progress | None = None,
    target: str | None = None,
) -> dict[str, Any]:
    """Export MODEL (a local directory or Hub id) into OUT_DIR; return the export metadata.

    Every input and output dim of the written model.onnx is fixed. `input_shapes` fixes whole inputs by name
    (e.g. {"pixel_values": [2, 3, 224, 224], "input_ids": [8, 16]}: CLIP's images and texts get batches of their
    own). Dims not given fall back to the modality plugin's defaults. Several sequence lengths write one graph
    per length (shape buckets, sharing one weights file); model.onnx is the largest. `target` (e.g. "qnn-htp")
    applies that target's graph rewrites to every graph. `quantize="int8"` writes dynamic int8 graphs, keeping
    the modules most sensitive to it fp32 until they agree with fp32 to `min_agreement` (else a ModelExportError).
    A failed export leaves nothing behind.
    """
    if quantize not in (None, "int8"):
        raise ModelExportError(f"--quantize takes int8 (dynamic quantization for CPUs), not {quantize!r}")
    lengths = bucket_lengths(sequence_length)
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
        "sequence_length": lengths[-1] if lengths else None,
        "height": height,
        "width": width,
        "num_channels": num_channels,
        "audio_sequence_length": audio_sequence_length,
    }
    explicit = named_dims(onnx_config.inputs, input_shapes or {}, {k: v for k, v in requested.items() if v is not None})
    defaults = hook().default_shapes(modality=modality.name, package_dir=local_files(source)) or {}
    shapes = {"batch_size": DEFAULT_BATCH_SIZE, **defaults, **explicit}
    _fit_sequence_length(shapes, config, explicit="sequence_length" in explicit)
    with staged_directory(out_dir, force) as staging:
        with timer.step("load", f"Loading {source.display_name}"):
            torch_model = _load_model(source, task, config.model_type)
        with timer.step("export", f"Exporting to ONNX (opset {opset}, dynamo)"):
            model_proto = _export_onnx(torch_model, onnx_config, shapes, opset, explicit, input_shapes or {})
        with timer.step("tag", "Tagging nodes with their source modules"):
            hierarchy = tag_model(model_proto, torch_model)
            dim_names = dim_names_of({**onnx_config.inputs, **onnx_config.outputs})
            signature = io_signature(model_proto)
        models = {MODEL_FILE: (model_proto, signature)}
        if len(lengths) > 1:
            with timer.step("buckets", f"Exporting and tagging the shape buckets {', '.join(map(str, lengths[:-1]))}"):
                for length in lengths[:-1]:
                    dims = {**shapes, "sequence_length": length}
                    bucket = _export_onnx(
                        torch_model, onnx_config, dims, opset, {**explicit, "sequence_length": length}
                    )
                    tag_model(bucket, torch_model)
                    models[bucket_file(length, lengths[-1])] = (bucket, io_signature(bucket))
        buckets = {name: _input_shapes(sig) for name, (_, sig) in models.items()} if len(models) > 1 else {}
        if execution_target:
            with timer.step("rewrite", f"Applying the {execution_target.name} target's graph rewrites"):
                rewrites = {name: apply_export_rewrites(proto, execution_target) for name, (proto, _) in models.items()}
        if quantize:
            with timer.step("quantize", "Quantizing to int8 and measuring its agreement with fp32"):
                int8, quantization = quantize_with_gate(
                    {name: proto for name, (proto, _) in models.items()},
                    task,
                    modality.name,
                    source.location,
                    min_agreement,
                )
                models = {name: (int8[name], sig) for name, (_, sig) in models.items()}
                timer.progress(_describe_quantization(quantization))
        with timer.step("save", f"Writing {', '.join(models)}"):
            for proto, sig in models.values():
                props = {KEY_VERSION: __version__, KEY_TASK: task, KEY_MODALITY: modality.name}
                props[KEY_DIM_NAMES] = json.dumps(dim_names)
                props[KEY_SHAPES] = json.dumps(_input_shapes(sig))
                set_model_metadata(proto, {**props, KEY_BUCKETS: json.dumps(buckets)} if buckets else props)
            if buckets:
                shared_weights = save_sharing_weights({name: proto for name, (proto, _) in models.items()}, staging)
            else:
                _save_onnx(models[MODEL_FILE][0], staging / MODEL_FILE)
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
                dim_names=dim_names,
            )
            if buckets:
                metadata.update(buckets=buckets, shared_weights=shared_weights)
            if quantize:
                metadata["quantization"] = quantization
            if execution_target:
                metadata["target"] = {"name": execution_target.name, "rewrites": rewrites[MODEL_FILE]}
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


def _describe_quantization(report: dict[str, Any]) -> str:
    kept = ", ".join(report["fp32_modules"]) or "none"
    return (
        f"int8 {report['metric']} {report['value']:.4f} (minimum {report['min_agreement']}) on {report['inputs']} "
        f"outputs, max deviation {report['max_deviation']:.4f}; modules kept fp32: {kept}"
    )


def _input_shapes(signature: dict[str, Any]) -> dict[str, list[int | None]]:
    return {i["name"]: i["shape"] for i in signature["inputs"]}


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
    """The PyTorch model for the task, loaded with every Hub option (Optimum's own loader drops the token).

    The class is Optimum's for the task, else the auto class of the transformers pipeline of that name
    (Optimum knows no `document-question-answering` loader for LayoutLM).
    """
    from optimum.exporters.tasks import TasksManager
    from transformers.pipelines import check_task

    try:
        model_class = TasksManager.get_model_class_for_task(
            export_task_for(task), framework="pt", model_type=model_type, library="transformers"
        )
    except KeyError:
        model_class = check_task(task)[1]["pt"][0]
    with quieted():
        return model_class.from_pretrained(source.location, **source.hub_kwargs).eval()


def _export_onnx(
    torch_model: Any,
    onnx_config: Any,
    shapes: dict[str, int],
    opset: int,
    explicit: dict[str, int] | None = None,
    input_shapes: dict[str, list[int]] | None = None,
) -> onnx.ModelProto:
    """Run torch.onnx.export(dynamo=True) on Optimum's dummy inputs, under Optimum's model patcher.

    The dims the user asked for (`explicit`) win over the ones Optimum's generators take from the config.
    """
    import torch

    dummy = onnx_config.generate_dummy_inputs(framework="pt", **shapes)
    dummy = onnx_config.rename_ambiguous_inputs(dummy)
    overridden = _honour_explicit_dims(dummy, onnx_config.inputs, explicit or {})
    check_ranks(dummy, input_shapes or {})
    torch_model.config.return_dict = True
    with (
        torch.no_grad(),
        onnx_config.patch_model_for_export(torch_model),
        quieted("torch.onnx", "onnx_ir", stdout=True),
    ):
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
