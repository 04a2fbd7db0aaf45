"""modelexport core: fixed-shape, hierarchy-tagged ONNX export and the plugin registry behind it."""

__version__ = "0.1.0"

from .auto import ONNXAutoProcessor  # noqa: E402
from .compare import compare_on_target  # noqa: E402
from .errors import ModelExportError, PluginMissingError  # noqa: E402
from .export import export  # noqa: E402
from .fixed import FixedShapeProcessor, FixedShapeWarning  # noqa: E402
from .hookspecs import ExecutionTarget, Modality, hookimpl  # noqa: E402
from .on_target import validate_every_graph_on_target, validate_on_target  # noqa: E402
from .pipeline import create_pipeline  # noqa: E402
from .shapes import DetectedShapes, detect_shapes  # noqa: E402
from .targets import get_target  # noqa: E402
from .validate import validate_optimum_compatibility  # noqa: E402

__all__ = [
    "DetectedShapes",
    "ExecutionTarget",
    "FixedShapeProcessor",
    "FixedShapeWarning",
    "ModelExportError",
    "ONNXAutoProcessor",
    "Modality",
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
