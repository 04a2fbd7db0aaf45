"""The vision plugin: registers `VisionModality` and the object-detection ORTModel Optimum lacks."""

from __future__ import annotations

from collections.abc import Callable

from modelexport_core import Modality, hookimpl
from modelexport_vision.modality import VisionModality


@hookimpl
def register_modalities(register: Callable[[Modality], None]) -> None:
    register(VisionModality())


@hookimpl
def ort_model_class(task: str) -> type | None:
    if task != "object-detection":
        return None
    from modelexport_vision.modeling import ORTModelForObjectDetection

    return ORTModelForObjectDetection
