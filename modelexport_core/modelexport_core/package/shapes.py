"""Shape detection: the fixed dims of a package, from the first source that knows them (DESIGN.md order)."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelexport_core.errors import FixedShapeWarning
from modelexport_core.package.buckets import read_buckets
from modelexport_core.package.layout import (
    DEFAULT_BATCH_SIZE,
    KEY_MODALITY,
    KEY_SHAPES,
    find_model_file,
    load_graph,
    model_metadata,
    read_export_metadata,
    value_info_dims,
)
from modelexport_core.plugins.manager import get_modality, modality_for_inputs
from modelexport_core.targets.cpu import CPU
from modelexport_core.targets.registry import target_session

InputShapes = dict[str, list[int | None]]


@dataclass(frozen=True)
class DetectedShapes:
    """The fixed shapes of a model: per input (None where dynamic), named per modality, and their source.

    `buckets` names the dims of each graph of a package exported at several sequence lengths (file -> dims).
    """

    modality: str
    input_shapes: InputShapes
    shapes: dict[str, int]
    source: str
    buckets: dict[str, dict[str, int]] = field(default_factory=dict)


def _from_export_metadata(model_file: Path) -> tuple[InputShapes, str | None] | None:
    metadata = read_export_metadata(model_file.parent)
    if metadata is None or "shapes" not in metadata:
        return None
    return metadata["shapes"], metadata.get("modality")


def _from_metadata_props(model_file: Path) -> tuple[InputShapes, str | None] | None:
    props = model_metadata(load_graph(model_file))
    if KEY_SHAPES not in props:
        return None
    return json.loads(props[KEY_SHAPES]), props.get(KEY_MODALITY)


def _from_graph(model_file: Path) -> tuple[InputShapes, str | None] | None:
    model = load_graph(model_file)
    initializers = {i.name for i in model.graph.initializer}
    return {i.name: value_info_dims(i) for i in model.graph.input if i.name not in initializers}, None


def _from_session(model_file: Path) -> tuple[InputShapes, str | None] | None:
    session = target_session(str(model_file), CPU)
    return {i.name: [d if isinstance(d, int) else None for d in i.shape] for i in session.get_inputs()}, None


_SOURCES: list[tuple[str, Callable[[Path], tuple[InputShapes, str | None] | None]]] = [
    ("export_metadata", _from_export_metadata),
    ("metadata_props", _from_metadata_props),
    ("graph", _from_graph),
    ("session", _from_session),
]


def detect_shapes(model: str | Path) -> DetectedShapes:
    """Read a package's fixed shapes: export_metadata.json, metadata_props, graph, session, then defaults."""
    model_file = find_model_file(model)
    partial: InputShapes = {}
    modality_name: str | None = None
    for source, read in _SOURCES:
        try:
            found = read(model_file)
        except Exception:  # a source that cannot be read (e.g. an ORT-format model for onnx.load) is skipped
            continue
        if found is None:
            continue
        input_shapes, modality_name = found[0], found[1] or modality_name
        if _all_static(input_shapes):
            return _with_buckets(_named(input_shapes, modality_name, source), model_file)
        partial = partial or input_shapes
    return _with_defaults(partial, modality_name, model_file)


def _with_buckets(detected: DetectedShapes, model_file: Path) -> DetectedShapes:
    """Add the package's shape buckets found beside the model, each named like the model's own dims."""
    buckets = {
        f: shapes
        for f, shapes in read_buckets(model_file, detected.source).items()
        if (model_file.parent / f).is_file()
    }
    if not buckets:
        return detected
    named = {file: _name_dims(detected.modality, shapes) for file, shapes in buckets.items()}
    return dataclasses.replace(detected, buckets=named)


def _all_static(input_shapes: InputShapes) -> bool:
    return all(d is not None and d > 0 for dims in input_shapes.values() for d in dims)


def _named(input_shapes: InputShapes, modality_name: str | None, source: str) -> DetectedShapes:
    modality_name = modality_name or modality_for_inputs(list(input_shapes)).name
    named = _name_dims(modality_name, input_shapes)
    return DetectedShapes(modality_name, {k: list(v) for k, v in input_shapes.items()}, dict(named), source)


def _name_dims(modality_name: str, input_shapes: InputShapes) -> dict[str, int | None]:
    return get_modality(modality_name).name_dims(input_shapes)


def _with_defaults(input_shapes: InputShapes, modality_name: str | None, model_file: Path) -> DetectedShapes:
    """Fill each dynamic dim from the modality's defaults, warning about every one of them."""
    modality_name = modality_name or modality_for_inputs(list(input_shapes)).name
    named = _name_dims(modality_name, input_shapes)
    defaults = {"batch_size": DEFAULT_BATCH_SIZE, **get_modality(modality_name).default_dims(model_file.parent)}
    dynamic = sorted(name for name, value in named.items() if value is None)
    filled = {name: defaults[name] if value is None else value for name, value in named.items()}
    if dynamic:
        warnings.warn(
            f"{model_file} has dynamic dims; using defaults " + ", ".join(f"{name}={filled[name]}" for name in dynamic),
            FixedShapeWarning,
            stacklevel=2,
        )
    return DetectedShapes(modality_name, {k: list(v) for k, v in input_shapes.items()}, filled, "defaults")
