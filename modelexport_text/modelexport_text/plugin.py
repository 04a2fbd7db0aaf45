"""The text plugin: registers `TextModality`."""

from __future__ import annotations

from collections.abc import Callable

from modelexport_core import Modality, hookimpl
from modelexport_text.modality import TextModality


@hookimpl
def register_modalities(register: Callable[[Modality], None]) -> None:
    register(TextModality())
