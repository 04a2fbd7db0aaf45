"""The plugin manager: loads the entry-point group ``modelexport``, honouring MODELEXPORT_LOAD_PLUGINS."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginMissingError
from .hookspecs import Modality

ENTRY_POINT_GROUP = "modelexport"
LOAD_PLUGINS_ENV = "MODELEXPORT_LOAD_PLUGINS"
BUILTIN_PLUGIN = "core"

# The one place core names first-party plugins: the hint telling a user what to install.
INSTALL_HINTS = {
    "text": ("modelexport-text", ("input_ids",)),
    "vision": ("modelexport-vision", ("pixel_values",)),
    "audio": ("modelexport-audio", ("input_values", "input_features")),
    "multimodal": ("modelexport-multimodal", ("bbox",)),
    "document": ("modelexport-multimodal", ()),
}


@dataclass(frozen=True)
class PluginInfo:
    """One row of `modelexport plugins list`."""

    plugin: str
    distribution: str
    version: str
    modality: tuple[str, ...]
    tasks: tuple[str, ...]
    targets: tuple[str, ...]
    hooks: tuple[str, ...]


def _allowed_names() -> set[str] | None:
    value = os.environ.get(LOAD_PLUGINS_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager with every allowed installed plugin registered."""
    from . import builtin

    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name=BUILTIN_PLUGIN)  # core's own rules load whatever the allow-list says
    allowed = _allowed_names()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is None:
            pm.register(ep.load(), name=ep.name)
    return pm


def _distributions() -> dict[str, tuple[str, str]]:
    """Entry-point name -> (distribution, version) of every installed plugin."""
    return {
        ep.name: (ep.dist.metadata["Name"], ep.dist.version) if ep.dist else ("-", "-")
        for ep in entry_points(group=ENTRY_POINT_GROUP)
    }


def list_plugins() -> list[PluginInfo]:
    """Describe every registered plugin: distribution, version, modalities, tasks, targets and implemented hooks."""
    pm = get_plugin_manager()
    distributions = _distributions()
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        declared = getattr(plugin, "register_modalities", lambda: [])() or []
        targets = getattr(plugin, "register_targets", lambda: [])() or []
        hooks = tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or []))
        rows.append(
            PluginInfo(
                plugin=name,
                distribution=distributions.get(name, ("-", "-"))[0],
                version=distributions.get(name, ("-", "-"))[1],
                modality=tuple(m.name for m in declared),
                tasks=tuple(task for m in declared for task in m.tasks),
                targets=tuple(t.name for t in targets),
                hooks=hooks,
            )
        )
    return rows


def modalities() -> list[Modality]:
    """Every modality the installed plugins serve."""
    return [m for group in get_plugin_manager().hook.register_modalities() for m in group]


def modality_for_inputs(input_names: list[str]) -> Modality:
    """The modality whose identifying inputs are all present (the most specific wins), or an install hint."""
    names = set(input_names)
    served = [m for m in modalities() if set(m.input_names) <= names]
    if served:
        return max(served, key=lambda m: len(m.input_names))
    raise PluginMissingError(_install_hint(names))


def _install_hint(input_names: set[str]) -> str:
    wanted = [pkg for pkg, inputs in INSTALL_HINTS.values() if input_names & set(inputs)]
    if len(wanted) > 1:
        wanted = ["modelexport-multimodal"]
    package = wanted[0] if wanted else "the modelexport plugin for this kind of model"
    return f"No installed modelexport plugin serves a model with inputs {sorted(input_names)}: pip install {package}"


def hook() -> Any:
    """Shortcut to the hook relay of the plugin manager."""
    return get_plugin_manager().hook


def missing_plugin(modality: str) -> PluginMissingError:
    """The error for a modality no installed plugin serves, naming the package to install."""
    package = INSTALL_HINTS.get(modality, (f"a modelexport plugin for {modality} models",))[0]
    return PluginMissingError(f"No installed modelexport plugin serves {modality} models: pip install {package}")
