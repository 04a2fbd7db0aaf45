"""The one exception family for user errors (the CLI prints the message on one line and exits 2), and the
warning given when an input is cut to fit a fixed shape."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

TRACEBACK_ENV = "MODELEXPORT_TRACEBACK"  # =1: show the traceback of a failure that is not a user error


class ModelExportError(Exception):
    """A user error (bad path, unknown task, missing plugin, ...) whose message says what to do."""


class PluginMissingError(ModelExportError):
    """No installed plugin serves a modality; the message names the package to install."""


class ExportStateError(ModelExportError):
    """The destination cannot be written (exists and is not empty, unwritable, ...)."""


class FixedShapeWarning(UserWarning):
    """An input was cut to fit a fixed shape."""


@contextlib.contextmanager
def remote_code_refused(what: str) -> Iterator[None]:
    """Turn transformers' refusal to run `what`'s own code (an `auto_map` in its config, trust_remote_code=False)
    into a one-line user error."""
    try:
        yield
    except ValueError as err:
        if "trust_remote_code" not in str(err):
            raise
        raise ModelExportError(
            f"{what} needs its own Python code to load (auto_map in its config): "
            "pass --trust-remote-code (trust_remote_code=True) only if you trust that code"
        ) from err


def one_line(err: BaseException) -> str:
    """`err` as the one line the CLI prints: a user error's message as it is, anything else named by its kind."""
    if isinstance(err, ModelExportError):
        return " ".join(str(err).split())
    if isinstance(err, OSError) and err.strerror:
        return err.strerror + (f": {err.filename}" if err.filename else "")
    return f"{named_first_line(err)} (set {TRACEBACK_ENV}=1 for the traceback)"


def named_first_line(err: BaseException) -> str:
    """`Type: the first line of its message` (the type alone when there is no message)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
