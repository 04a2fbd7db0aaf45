"""The ORTModel class that loads a package exported for a task: the one a plugin names, else Optimum's."""

from __future__ import annotations

from modelexport_core.errors import ModelExportError
from modelexport_core.plugins.manager import hook, served_tasks


def ort_model_class(task: str) -> type:
    """The ORTModelForXxx class that loads a package exported for `task`."""
    plugin_class = hook().ort_model_class(task=task)
    if plugin_class is not None:
        return plugin_class
    from optimum.onnxruntime.pipelines import get_ort_model_class

    from modelexport_core.exporter.tasks import export_task_for

    try:
        return get_ort_model_class(export_task_for(task))
    except KeyError as err:
        raise ModelExportError(
            f"No ORTModel class for task '{task}'; the installed plugins serve {', '.join(served_tasks())}"
        ) from err
