"""Tasks: inferring one from a config, and checking that Optimum can export a model for it."""

from __future__ import annotations

from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.plugins.manager import hook, modalities


def export_task_for(task: str) -> str:
    """The Optimum export task behind a pipeline task (a modality's alias, e.g. zero-shot-classification, first)."""
    from optimum.exporters.tasks import TasksManager

    aliases = {alias: target for m in modalities().values() for alias, target in m.task_aliases.items()}
    return TasksManager.map_from_synonym(aliases.get(task, task))


def infer_task(config: Any) -> str:
    """The task of a model, from its config's `architectures` (works for local directories offline)."""
    import transformers
    from optimum.exporters.tasks import TasksManager

    for architecture in getattr(config, "architectures", None) or []:
        model_class = getattr(transformers, architecture, None)
        if model_class is None:
            continue
        try:
            return TasksManager._infer_task_from_model_or_model_class(model_class=model_class)
        except ValueError:
            continue
    raise ModelExportError("Cannot infer the task from config.json's `architectures`: pass --task")


def supported_tasks(config: Any) -> list[str]:
    """The export tasks Optimum's ONNX exporter supports for this model type."""
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs)
    from optimum.exporters.tasks import TasksManager

    try:
        return sorted(
            TasksManager.get_supported_tasks_for_model_type(config.model_type, "onnx", library_name="transformers")
        )
    except KeyError as err:
        raise ModelExportError(f"Optimum cannot export model type '{config.model_type}' to ONNX") from err


def onnx_config_for(config: Any, task: str) -> Any:
    """The OnnxConfig for (model, task): a plugin's, else Optimum's.

    A task the model does not support is refused, listing those it does.
    """
    from optimum.exporters.tasks import TasksManager

    export_task = export_task_for(task)
    custom = hook().onnx_config(config=config, task=export_task)
    if custom is not None:
        return custom
    tasks = supported_tasks(config)
    if export_task not in tasks:
        raise ModelExportError(
            f"Task '{task}' is not supported for model type '{config.model_type}'; supported: {', '.join(tasks)}"
        )
    constructor = TasksManager.get_exporter_config_constructor(
        "onnx", task=export_task, model_type=config.model_type, library_name="transformers"
    )
    return constructor(config, task=export_task)
