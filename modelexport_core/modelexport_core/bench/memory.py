"""Peak memory of a block of code: the process's resident set size, sampled while the block runs."""

from __future__ import annotations

import os
import threading
from types import TracebackType

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """The process's resident set size now (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:
        return 0


class PeakMemory:
    """`with PeakMemory() as memory: ...` then `memory.peak_mb`: the largest RSS growth over the start, in MB.

    Native allocations (onnxruntime sessions, torch tensors) count, which tracemalloc would miss.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start = self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, resident_bytes())

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = resident_bytes()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, resident_bytes())

    @property
    def peak_mb(self) -> float:
        return (self.peak - self.start) / 2**20
