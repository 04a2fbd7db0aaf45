"""The CPU a benchmark ran on: its model and the flags onnxruntime's int8 kernels depend on."""

from __future__ import annotations

import platform
from pathlib import Path

INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_description() -> str:
    """E.g. "AMD EPYC 9R14 96-Core Processor (2 cores; avx2 avx512f avx512_vnni)", from /proc/cpuinfo."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = [line.partition(":") for line in info.splitlines()]
    model = next((value.strip() for key, _, value in fields if key.strip() == "model name"), platform.machine())
    flags = set(next((value.split() for key, _, value in fields if key.strip() == "flags"), []))
    cores = sum(1 for key, _, _ in fields if key.strip() == "processor")
    return f"{model} ({cores} cores; {' '.join(f for f in INT8_FLAGS if f in flags) or 'no AVX2'})"
