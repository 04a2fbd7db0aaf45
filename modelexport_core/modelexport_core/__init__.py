"""modelexport core: fixed-shape, hierarchy-tagged ONNX export and the plugin registry behind it."""

__version__ = "0.1.0"

from .auto import ONNXAutoProcessor
from .compare import compare_on_target
from .errors import ModelExportError, PluginMissingError
from .export import export
from .fixed import FixedShapeProcessor, FixedShapeWarning
from .hookspecs import ExecutionTarget, Modality, hookimpl
from .on_target import validate_every_graph_on_target, validate_on_target
from .pipeline import create_pipeline
from .shapes import DetectedShapes, detect_shapes
from .targets import get_target
from .validate import validate_optimum_compatibility

__all__ = [
    "DetectedShapes",
    "ExecutionTarget",
    "FixedShapeProcessor",
    "FixedShapeWarning",
    "Modality",
    "ModelExportError",
    "ONNXAutoProcessor",
    "PluginMissingError",
    "compare_on_target",
    "create_pipeline",
    "detect_shapes",
    "export",
    "get_target",
    "hookimpl",
    "validate_every_graph_on_target",
    "validate_on_target",
    "validate_optimum_compatibility",
]
