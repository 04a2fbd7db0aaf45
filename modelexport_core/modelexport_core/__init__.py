"""modelexport core: fixed-shape, hierarchy-tagged ONNX export and the plugin registry behind it."""

__version__ = "0.1.0"

from .auto import ONNXAutoProcessor  # noqa: E402
from .errors import ModelExportError, PluginMissingError  # noqa: E402
from .export import export  # noqa: E402
from .fixed import FixedShapeProcessor, FixedShapeWarning  # noqa: E402
from .hookspecs import Modality, hookimpl  # noqa: E402
from .pipeline import create_pipeline  # noqa: E402
from .shapes import DetectedShapes, detect_shapes  # noqa: E402
from .validate import validate_optimum_compatibility  # noqa: E402

__all__ = [
    "DetectedShapes",
    "FixedShapeProcessor",
    "FixedShapeWarning",
    "ModelExportError",
    "ONNXAutoProcessor",
    "Modality",
    "PluginMissingError",
    "create_pipeline",
    "detect_shapes",
    "export",
    "hookimpl",
    "validate_optimum_compatibility",
]
