"""The `qnn-htp` target: Qualcomm's QNN execution provider with its HTP (NPU) backend, from onnxruntime-qnn.

A built-in plugin of core, available when the extra `modelexport-core[qnn]` is installed. On x86_64 the
wheel's libQnnHtp.so simulates the NPU, so packages are checked here before they reach a device.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelexport_core.plugins.hookspecs import hookimpl
from modelexport_core.targets.qnn.rewrites import masked_fills_as_where, materialize_broadcasts_into_layernorm
from modelexport_core.targets.target import ExecutionTarget

PROVIDER = "QNNExecutionProvider"
# The simulated device: Snapdragon 8 Gen 3 (soc_model 60) with its Hexagon v75 HTP. A QDQ graph's input
# quantization and output dequantization run there too (onnxruntime-qnn offloads them to the CPU by default).
HTP_OPTIONS = {"soc_model": "60", "htp_arch": "75", "offload_graph_io_quantization": "0"}
_DYNAMIC_INT8 = (
    "holds {op} nodes of dynamic int8 quantization (--quantize int8), a CPU-only feature that QNN refuses "
    "(export with --quantize w8a16 or w8a8 for NPUs)"
)


def _available() -> bool:
    try:
        import onnxruntime_qnn  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _qnn_devices() -> list[Any]:
    """Register onnxruntime-qnn's provider library once per process; its ep devices."""
    import onnxruntime
    import onnxruntime_qnn

    onnxruntime.register_execution_provider_library(PROVIDER, onnxruntime_qnn.get_library_path())
    return [device for device in onnxruntime.get_ep_devices() if device.ep_name == PROVIDER]


@contextlib.contextmanager
def _native_stdout_silenced() -> Iterator[None]:
    """Keep the QNN libraries' own printf (a "# LIBNATIVE: ..." line) out of stdout, where JSON goes."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _on_the_htp(options: Any) -> Any:
    import onnxruntime_qnn

    options.add_provider_for_devices(
        _qnn_devices(), {"backend_path": onnxruntime_qnn.get_qnn_htp_path(), **HTP_OPTIONS}
    )
    return options


def _session(model: str | bytes, options: Any) -> Any:
    import onnxruntime

    with _native_stdout_silenced():
        return onnxruntime.InferenceSession(model, sess_options=_on_the_htp(options))


def _compile(model: Path, output: Path) -> None:
    """The HTP's EP context model of `model` (its context binary beside it, `<output>_qnn.bin`)."""
    import onnxruntime

    options = _on_the_htp(onnxruntime.SessionOptions())
    options.log_severity_level = 3
    with _native_stdout_silenced():
        onnxruntime.ModelCompiler(options, str(model)).compile_to_file(str(output))


QNN_HTP = ExecutionTarget(
    name="qnn-htp",
    provider=PROVIDER,
    is_available=_available,
    build_session=_session,
    install_hint="pip install 'modelexport-core[qnn]'",
    refused_ops={op: _DYNAMIC_INT8.format(op=op) for op in ("DynamicQuantizeLinear", "MatMulInteger", "ConvInteger")},
    export_rewrites=(materialize_broadcasts_into_layernorm, masked_fills_as_where),
    compile=_compile,
)


@hookimpl
def register_targets(register: Callable[[ExecutionTarget], None]) -> None:
    register(QNN_HTP)
