"""The one exception family for user errors (the CLI prints the message on one line and exits 2), and the
warning given when an input is cut to fit a fixed shape."""

from __future__ import annotations


class ModelExportError(Exception):
    """A user error (bad path, unknown task, missing plugin, ...) whose message says what to do."""


class PluginMissingError(ModelExportError):
    """No installed plugin serves a modality; the message names the package to install."""


class ExportStateError(ModelExportError):
    """The destination cannot be written (exists and is not empty, unwritable, ...)."""


class FixedShapeWarning(UserWarning):
    """An input was cut to fit a fixed shape."""
