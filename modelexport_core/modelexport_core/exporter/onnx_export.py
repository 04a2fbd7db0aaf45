"""PyTorch to ONNX: the task's model loaded with every Hub option, exported by the dynamo exporter at fixed dims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from modelexport_core.errors import ModelExportError
from modelexport_core.exporter.dims import check_ranks
from modelexport_core.exporter.gelu import gelu_in_fusable_order
from modelexport_core.exporter.source import ModelSource
from modelexport_core.exporter.tasks import export_task_for
from modelexport_core.package.layout import EXTERNAL_DATA_THRESHOLD
from modelexport_core.quiet import quieted


def load_model(source: ModelSource, task: str, model_type: str) -> Any:
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
    try:
        with quieted():
            return model_class.from_pretrained(source.location, **source.hub_kwargs).eval()
    except Exception as err:  # missing or corrupt weights (SafetensorError, OSError), a head of another shape
        reason = " ".join(str(err).split())[:400]
        raise ModelExportError(
            f"Cannot load {source.display_name} as {model_class.__name__} ({task}): {reason}"
        ) from err


def export_onnx(
    torch_model: Any,
    onnx_config: Any,
    shapes: dict[str, int],
    opset: int,
    explicit: dict[str, int] | None = None,
    input_shapes: dict[str, list[int]] | None = None,
) -> onnx.ModelProto:
    """Run torch.onnx.export(dynamo=True) on Optimum's dummy inputs, under Optimum's model patcher; the exact
    GELU in the order onnxruntime fuses.

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
    model_proto = program.model_proto  # a new proto on each access
    gelu_in_fusable_order(model_proto)
    return model_proto


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


def save_onnx(model_proto: onnx.ModelProto, path: Path) -> None:
    if model_proto.ByteSize() > EXTERNAL_DATA_THRESHOLD:
        onnx.save(model_proto, path, save_as_external_data=True, location=f"{path.name}.data")
    else:
        onnx.save(model_proto, path)
