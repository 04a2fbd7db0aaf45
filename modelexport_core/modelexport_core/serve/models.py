"""Loading a package as an ORTModel, with the class its task names (`package.ort_model`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelexport_core.errors import remote_code_refused
from modelexport_core.package.layout import find_model_file
from modelexport_core.package.ort_model import ort_model_class


def load_ort_model(
    task: str, model: Any, session_options: Any = None, trust_remote_code: bool = False
) -> tuple[Any, Path]:
    """An ORTModel and its model file, from a package dir, a path to model.onnx, or an ORTModel; a config that
    needs its own code is refused in one line unless `trust_remote_code`."""
    from optimum.onnxruntime import ORTModel

    if isinstance(model, ORTModel):
        return model, Path(model.path)
    model_file = find_model_file(model)
    with remote_code_refused(f"The package {model_file.parent}"):
        loaded = ort_model_class(task).from_pretrained(
            model_file.parent,
            file_name=model_file.name,
            session_options=session_options,
            trust_remote_code=trust_remote_code,
        )
    return loaded, model_file
