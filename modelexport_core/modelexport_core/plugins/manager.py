"""The plugin manager: loads the entry-point group ``modelexport`` (honouring MODELEXPORT_LOAD_PLUGINS) and
collects the modalities and targets the plugins register."""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from modelexport_core.errors import PluginMissingError, named_first_line
from modelexport_core.plugins import builtin, hookspecs
from modelexport_core.plugins.modality import Modality
from modelexport_core.targets.target import ExecutionTarget

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


class PluginWarning(UserWarning):
    """A plugin was skipped: it failed to load, or answered a hook wrongly. The other plugins keep working."""


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
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name=BUILTIN_PLUGIN)  # core's own rules load whatever the allow-list says
    allowed = _allowed_names()
    installed = entry_points(group=ENTRY_POINT_GROUP)
    for ep in installed:
        if (allowed is None or ep.name in allowed) and pm.get_plugin(ep.name) is None:
            _register(pm, ep)
    unknown = sorted((allowed or set()) - {ep.name for ep in installed} - {BUILTIN_PLUGIN})
    if unknown:
        names = ", ".join(sorted(ep.name for ep in installed))
        _skipped(f"{LOAD_PLUGINS_ENV} names {', '.join(unknown)}, which no installed plugin is (installed: {names})")
    return pm


def _skipped(message: str) -> None:
    warnings.warn(message, PluginWarning, stacklevel=3)


def _register(pm: pluggy.PluginManager, ep: Any) -> None:
    """Load and register one entry point; a plugin that fails to is skipped with a one-line warning."""
    try:
        pm.register(ep.load(), name=ep.name)
    except Exception as err:  # a third party's bug must not break the others
        distribution = ep.dist.metadata["Name"] if ep.dist else "unknown distribution"
        _skipped(
            f"modelexport plugin {ep.name} ({distribution}) is skipped: it failed to load: {named_first_line(err)}"
        )


def hook() -> Any:
    """Shortcut to the hook relay of the plugin manager."""
    return get_plugin_manager().hook


def _registered(hook_name: str, kind: type) -> dict[str, list[Any]]:
    """Plugin name -> the objects of `kind` its `hook_name` implementation registered (the same objects while
    the same plugins are registered)."""
    return _collect(tuple(getattr(get_plugin_manager().hook, hook_name).get_hookimpls()), hook_name, kind)


@functools.lru_cache(maxsize=8)
def _collect(impls: tuple[Any, ...], hook_name: str, kind: type) -> dict[str, list[Any]]:
    """What each plugin registers; a plugin whose hook raises or registers something else is skipped, warned."""
    found: dict[str, list[Any]] = {}
    for impl in impls:
        objects: list[Any] = []
        try:
            impl.function(register=objects.append)
        except Exception as err:  # a third party's bug must not break the others
            _skipped(
                f"modelexport plugin {impl.plugin_name} is skipped: its {hook_name} raised {named_first_line(err)}"
            )
            continue
        wrong = [obj for obj in objects if not isinstance(obj, kind)]
        if wrong:
            _skipped(
                f"modelexport plugin {impl.plugin_name} is skipped: it registered a {type(wrong[0]).__name__} "
                f"through {hook_name}, not a {kind.__name__}"
            )
            continue
        found[impl.plugin_name] = objects
    return found


def modalities() -> dict[str, Modality]:
    """Every modality the installed plugins register, by name."""
    return {m.name: m for group in _registered("register_modalities", Modality).values() for m in group}


def served_tasks() -> list[str]:
    """Every task the installed plugins serve (their aliases included), sorted."""
    return sorted({task for m in modalities().values() for task in (*m.tasks, *m.task_aliases)})


def targets() -> dict[str, ExecutionTarget]:
    """Every execution target the installed plugins register, by name."""
    return {t.name: t for group in _registered("register_targets", ExecutionTarget).values() for t in group}


def get_modality(name: str) -> Modality:
    """The registered modality of this name, or a user error naming the package to install."""
    found = modalities().get(name)
    if found is None:
        raise missing_plugin(name)
    return found


def modality_for_inputs(input_names: list[str]) -> Modality:
    """The modality whose identifying inputs are all present (the most specific wins), or an install hint."""
    names = set(input_names)
    served = [m for m in modalities().values() if set(m.input_names) <= names]
    if served:
        return max(served, key=lambda m: len(m.input_names))
    raise PluginMissingError(_install_hint(names))


def _install_hint(input_names: set[str]) -> str:
    wanted = [pkg for pkg, inputs in INSTALL_HINTS.values() if input_names & set(inputs)]
    if len(wanted) > 1:
        wanted = ["modelexport-multimodal"]
    package = wanted[0] if wanted else "the modelexport plugin for this kind of model"
    return f"No installed modelexport plugin serves a model with inputs {sorted(input_names)}: pip install {package}"


def missing_plugin(modality: str) -> PluginMissingError:
    """The error for a modality no installed plugin serves, naming the package to install."""
    package = INSTALL_HINTS.get(modality, (f"a modelexport plugin for {modality} models",))[0]
    return PluginMissingError(f"No installed modelexport plugin serves {modality} models: pip install {package}")


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
    by_plugin = _registered("register_modalities", Modality)
    targets_by_plugin = _registered("register_targets", ExecutionTarget)
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        declared = by_plugin.get(name, [])
        distribution, version = distributions.get(name, ("-", "-"))
        rows.append(
            PluginInfo(
                plugin=name,
                distribution=distribution,
                version=version,
                modality=tuple(m.name for m in declared),
                tasks=tuple(task for m in declared for task in m.tasks),
                targets=tuple(t.name for t in targets_by_plugin.get(name, [])),
                hooks=tuple(sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])),
            )
        )
    return rows
