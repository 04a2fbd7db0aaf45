"""modelexport core: fixed-shape, hierarchy-tagged ONNX export and the plugin registry behind it."""

__version__ = "0.1.0"

from modelexport_core.errors import FixedShapeWarning, ModelExportError, PluginMissingError
from modelexport_core.exporter.api import export
from modelexport_core.package.shapes import DetectedShapes, detect_shapes
from modelexport_core.package.signing import sign_package, verify_package
from modelexport_core.package.validate import validate_optimum_compatibility
from modelexport_core.plugins.hookspecs import hookimpl
from modelexport_core.plugins.modality import Modality, copy_pretrained
from modelexport_core.serve.auto import ONNXAutoProcessor
from modelexport_core.serve.auto_model import AutoModelForONNX
from modelexport_core.serve.fixed import FixedShapeProcessor
from modelexport_core.serve.pipeline import create_pipeline
from modelexport_core.targets.compare import compare_on_target
from modelexport_core.targets.registry import get_target
from modelexport_core.targets.target import ExecutionTarget
from modelexport_core.targets.validate import validate_every_graph_on_target, validate_on_target

__all__ = [
    "AutoModelForONNX",
    "DetectedShapes",
    "ExecutionTarget",
    "FixedShapeProcessor",
    "FixedShapeWarning",
    "Modality",
    "ModelExportError",
    "ONNXAutoProcessor",
    "PluginMissingError",
    "compare_on_target",
    "copy_pretrained",
    "create_pipeline",
    "detect_shapes",
    "export",
    "get_target",
    "hookimpl",
    "sign_package",
    "validate_every_graph_on_target",
    "validate_on_target",
    "validate_optimum_compatibility",
    "verify_package",
]
