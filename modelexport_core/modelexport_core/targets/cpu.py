"""The `cpu` target: onnxruntime's CPU provider, always available, the reference other targets are compared with."""

from __future__ import annotations

from typing import Any

from modelexport_core.targets.target import ExecutionTarget

CPU_PROVIDER = "CPUExecutionProvider"


def _cpu_session(model: str | bytes, options: Any) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(model, sess_options=options, providers=[CPU_PROVIDER])


CPU = ExecutionTarget(name="cpu", provider=CPU_PROVIDER, is_available=lambda: True, build_session=_cpu_session)
