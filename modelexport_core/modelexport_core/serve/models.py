"""Loading a package as an ORTModel, with the class its task names (`package.ort_model`)."""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

from modelexport_core.errors import remote_code_refused
from modelexport_core.package.files import sha256_of
from modelexport_core.package.layout import find_model_file
from modelexport_core.package.ort_model import ort_model_class
from modelexport_core.serve.weights import shared_weights
from modelexport_core.targets.compile import compiled_graph
from modelexport_core.targets.cpu import CPU_PROVIDER
from modelexport_core.targets.registry import session_options as default_options
from modelexport_core.targets.registry import target_session
from modelexport_core.targets.target import ExecutionTarget

_shared: weakref.WeakValueDictionary[tuple, Any] = weakref.WeakValueDictionary()
_sharing = threading.Lock()


def load_ort_model(
    task: str,
    model: Any,
    session_options: Any = None,
    trust_remote_code: bool = False,
    target: ExecutionTarget | None = None,
    share: bool = True,
    share_weights: bool = False,
) -> tuple[Any, Path]:
    """An ORTModel and its model file, from a package dir, a path to model.onnx, or an ORTModel; a config that
    needs its own code is refused in one line unless `trust_remote_code`. On a `target` other than the CPU, the
    session runs there with CPU fallback disabled (a node the target refuses is an error, not a slow surprise),
    from the package's compiled graph for that target when it has one.

    With `share`, a model file already loaded in this process with the same sha256, task, target and options
    object gives the same ORTModel (its session is shared); the process holds it weakly, so its memory is released
    when the last pipeline or model using it is gone. With `share_weights` (bucketed packages on the CPU), the
    session reads the package's weights from one memory map shared by all its graphs, and runs on their shared
    prepacked forms (`weights.py`)."""
    model_file = model_file_of(model)
    if not isinstance(model, (str, Path)):
        return model, model_file
    settings = (session_options, trust_remote_code, target, share_weights)
    if not share:
        return _loaded(task, model_file, *settings), model_file
    key = (str(model_file.resolve()), sha256_of(model_file), task, target and target.name, *settings[:2], share_weights)
    with _sharing:
        loaded = _shared.get(key)
        if loaded is None:
            loaded = _shared[key] = _loaded(task, model_file, *settings)
    return loaded, model_file


def model_file_of(model: Any) -> Path:
    """The model file of a package dir, a path to model.onnx, or an ORTModel."""
    return find_model_file(model) if isinstance(model, (str, Path)) else Path(model.path)


def _loaded(
    task: str,
    model_file: Path,
    session_options: Any,
    trust_remote_code: bool,
    target: ExecutionTarget | None,
    share_weights: bool,
) -> Any:
    from transformers import AutoConfig

    model_class = ort_model_class(task)
    with remote_code_refused(f"The package {model_file.parent}"):
        if target is None or target.provider == CPU_PROVIDER:
            weights = shared_weights(model_file.parent) if share_weights else None
            options = weights.options(model_file, session_options) if weights else session_options or default_options()
            loaded = model_class.from_pretrained(
                model_file.parent,
                file_name=model_file.name,
                session_options=options,
                trust_remote_code=trust_remote_code,
            )
            if weights is not None:
                loaded.session = weights.prepacked(model_file, loaded.session)
            loaded.shared_weights = weights  # the sessions read the map's memory: it lives as long as they do
        else:
            config = AutoConfig.from_pretrained(model_file.parent, trust_remote_code=trust_remote_code)
            compiled = compiled_graph(model_file, target)  # precompiled by `modelexport compile`: loads at once
            session = target_session(str(compiled or model_file), target, options=session_options)
            loaded = model_class(config=config, session=session)
    return loaded
