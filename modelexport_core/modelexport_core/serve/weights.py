"""One copy of a bucketed package's weights, one of their prepacked forms and one memory arena, for all its sessions.

Every graph of a bucketed package reads its large tensors from the one `model.onnx.data`, but onnxruntime gives
each session its own copy, and its own prepacked copy of each matmul weight. Here each graph's external
initializers are arrays over one memory map of that file. The graph's Python session gets them as OrtValues
(`add_initializer`: the session uses the buffer, it does not copy it), with prepacking and the arena off:
Optimum's ORTModel reads the graph's inputs and outputs from it and never runs it. Its runs go to a C API session
of the same graph over the same arrays (`prepacked.py`), which shares one container of prepacked weights and one
memory arena with the package's other sessions. Once a session has packed its weights, the map's pages are let go.

Measured on all-MiniLM-L6-v2's twenty buckets (320 sentences, batch 8, 2 threads), process RSS after an unsorted
pass over every bucket: 617 MB shared, 1398 MB shared nothing, 554 MB for model.onnx [8, 128] alone.
"""

from __future__ import annotations

import contextlib
import mmap
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from modelexport_core.package.layout import load_graph
from modelexport_core.package.shared_weights import WEIGHTS_FILE
from modelexport_core.serve.prepacked import PrepackedContainer, c_api
from modelexport_core.targets.registry import tuned

_ATTRIBUTES = (  # what a SessionOptions carries besides its config entries, which cannot be read back
    "enable_cpu_mem_arena",
    "enable_mem_pattern",
    "enable_mem_reuse",
    "enable_profiling",
    "execution_mode",
    "execution_order",
    "graph_optimization_level",
    "inter_op_num_threads",
    "intra_op_num_threads",
    "log_severity_level",
    "log_verbosity_level",
    "logid",
    "profile_file_prefix",
    "use_deterministic_compute",
    "use_per_session_threads",
)
LET_GO_SECONDS = 0.01
_maps: weakref.WeakValueDictionary[str, SharedWeights] = weakref.WeakValueDictionary()
_mapping = threading.Lock()


class SharedWeights:
    """The memory map of one package's weights file, the arrays and OrtValues over it, and the container of their
    prepacked forms."""

    def __init__(self, weights_file: Path) -> None:
        with weights_file.open("rb") as file:
            self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        self.data = np.frombuffer(self._map, dtype=np.uint8)
        self._arrays: dict[tuple[int, int, int, tuple[int, ...]], np.ndarray] = {}
        self._values: dict[int, Any] = {}
        self._graphs: dict[Path, dict[str, np.ndarray]] = {}
        self._container: PrepackedContainer | None = None

    def options(self, graph_file: Path, base: Any) -> Any:
        """SessionOptions for `graph_file`: `base`'s settings, prepacking and the arena off, modelexport's
        settings (`tuned`), its weights from the map."""
        import onnxruntime

        options = tuned(onnxruntime.SessionOptions())
        for name in _ATTRIBUTES:
            if base is not None:
                setattr(options, name, getattr(base, name))
        options.enable_cpu_mem_arena = False
        options.add_session_config_entry("session.disable_prepacking", "1")
        for name, array in self.arrays(graph_file).items():
            options.add_initializer(name, self._value(array))
        return options

    def prepacked(self, graph_file: Path, described: Any) -> Any:
        """`described` (the Python session of `graph_file`, made with `options`) running on a C API session whose
        prepacked weights are shared with every other session this package's `prepacked` gave (`described` itself
        where the onnxruntime wheel ships no shared library)."""
        api = c_api()
        if api is None:
            return described
        with _mapping, self._pages_let_go():
            if self._container is None:
                self._container = PrepackedContainer(api)
            return self._container.session(
                graph_file, described.get_session_options(), self.arrays(graph_file), described
            )

    @contextlib.contextmanager
    def _pages_let_go(self) -> Iterator[None]:
        """While a session packs the weights (reading each once), and after, the map's pages are let go every
        LET_GO_SECONDS: packed, a weight is not read again, and the RSS would otherwise peak at the whole file
        over the packed copies each time a bucket's session is created."""
        done = threading.Event()

        def let_go() -> None:
            while not done.wait(LET_GO_SECONDS):
                self._let_go()

        watcher = threading.Thread(target=let_go, daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
            self._let_go()

    def _let_go(self) -> None:
        if hasattr(mmap, "MADV_DONTNEED"):  # not on Windows: the pages then stay until the OS needs them
            self._map.madvise(mmap.MADV_DONTNEED)

    def arrays(self, graph_file: Path) -> dict[str, np.ndarray]:
        """The graph's external initializers, by name, as arrays over the map (stored once by content: an all-zero
        zero-point and another all-zero tensor may share their bytes); the graph is read once for both sessions."""
        if graph_file not in self._graphs:
            arrays = {}
            for tensor in load_graph(graph_file).graph.initializer:
                if tensor.data_location == onnx.TensorProto.EXTERNAL:
                    arrays[tensor.name] = self._array(tensor)
            self._graphs[graph_file] = arrays
        return self._graphs[graph_file]

    def _array(self, tensor: onnx.TensorProto) -> np.ndarray:
        place = {entry.key: entry.value for entry in tensor.external_data}
        offset, length = int(place["offset"]), int(place["length"])
        key = (offset, length, tensor.data_type, tuple(tensor.dims))
        if key not in self._arrays:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
            self._arrays[key] = self.data[offset : offset + length].view(dtype).reshape(key[3])
        return self._arrays[key]

    def _value(self, array: np.ndarray) -> Any:
        import onnxruntime

        if id(array) not in self._values:
            self._values[id(array)] = onnxruntime.OrtValue.ortvalue_from_numpy(array)
        return self._values[id(array)]


def shared_weights(package_dir: Path) -> SharedWeights | None:
    """The package's SharedWeights (one per process while used), or None when it has no shared weights file."""
    weights_file = package_dir / WEIGHTS_FILE
    if not weights_file.is_file():
        return None
    key = str(weights_file.resolve())
    with _mapping:
        found = _maps.get(key)
        if found is None:
            found = _maps[key] = SharedWeights(weights_file)
    return found
