"""modelexport core: fixed-shape, hierarchy-tagged ONNX export and the plugin registry behind it."""

__version__ = "0.1.0"

from .errors import ModelExportError, PluginMissingError  # noqa: E402
from .export import export  # noqa: E402
from .hookspecs import Modality, hookimpl  # noqa: E402
from .validate import validate_optimum_compatibility  # noqa: E402

__all__ = [
    "ModelExportError",
    "Modality",
    "PluginMissingError",
    "export",
    "hookimpl",
    "validate_optimum_compatibility",
]
