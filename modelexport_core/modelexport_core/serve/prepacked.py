"""Sessions that share their prepacked weights: onnxruntime's prepacked-weights container, through its C API.

A CPU matmul runs fastest on its weight prepacked into the kernel's layout, but onnxruntime prepacks a weight
handed to a session with `add_initializer` into a copy of that session's own, so `weights.py` turns prepacking
off. The C API can give sessions one container of prepacked weights (`CreateSessionWithPrepackedWeightsContainer`):
the first session packs a weight, the others reuse the packed copy. Python's bindings do not expose it, so this
module calls the wheel's own `libonnxruntime.so` through ctypes, whose environment also holds one memory arena
for all these sessions (`use_env_allocators`). Only `run` goes there (its `run_options` are not carried);
everything else about a session is the Python session's of the same graph.
"""

from __future__ import annotations

import ctypes
import functools
import math
import threading
from ctypes import POINTER, byref, c_char_p, c_int, c_int64, c_size_t, c_uint32, c_void_p
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from modelexport_core.targets.registry import TUNED_CONFIG

API_VERSION = 8  # CreateSessionWithPrepackedWeightsContainer arrived in version 8; the table only grows
_P, _OUT, _DIMS, _NAMES = c_void_p, POINTER(c_void_p), POINTER(c_int64), POINTER(c_char_p)
FUNCTIONS = {  # name: (index in the OrtApi table of onnxruntime_c_api.h, result type, argument types)
    "GetErrorMessage": (2, c_char_p, [_P]),
    "CreateEnv": (3, _P, [c_int, c_char_p, _OUT]),
    "Run": (9, _P, [_P, _P, _NAMES, _OUT, c_size_t, _NAMES, c_size_t, _OUT]),
    "CreateSessionOptions": (10, _P, [_OUT]),
    "SetSessionExecutionMode": (13, _P, [_P, c_int]),
    "DisableMemPattern": (17, _P, [_P]),
    "SetSessionLogSeverityLevel": (22, _P, [_P, c_int]),
    "SetSessionGraphOptimizationLevel": (23, _P, [_P, c_int]),
    "SetIntraOpNumThreads": (24, _P, [_P, c_int]),
    "SetInterOpNumThreads": (25, _P, [_P, c_int]),
    "CreateTensorWithDataAsOrtValue": (49, _P, [_P, _P, c_size_t, _DIMS, c_size_t, c_int, _OUT]),
    "GetTensorMutableData": (51, _P, [_P, _OUT]),
    "GetTensorElementType": (60, _P, [_P, POINTER(c_int)]),
    "GetDimensionsCount": (61, _P, [_P, POINTER(c_size_t)]),
    "GetDimensions": (62, _P, [_P, _DIMS, c_size_t]),
    "GetTensorTypeAndShape": (65, _P, [_P, _OUT]),
    "CreateCpuMemoryInfo": (69, _P, [c_int, c_int, _OUT]),
    "ReleaseStatus": (93, None, [_P]),
    "ReleaseSession": (95, None, [_P]),
    "ReleaseValue": (96, None, [_P]),
    "ReleaseTensorTypeAndShapeInfo": (99, None, [_P]),
    "ReleaseSessionOptions": (100, None, [_P]),
    "AddSessionConfigEntry": (130, _P, [_P, c_char_p, c_char_p]),
    "CreateAndRegisterAllocator": (144, _P, [_P, _P, _P]),
    "AddInitializer": (150, _P, [_P, c_char_p, _P]),
    "CreatePrepackedWeightsContainer": (166, _P, [_OUT]),
    "ReleasePrepackedWeightsContainer": (167, None, [_P]),
    "CreateSessionWithPrepackedWeightsContainer": (168, _P, [_P, c_char_p, _P, _P, _OUT]),
}
_LOG_ERRORS = 3
_ARENA_ALLOCATOR, _DEFAULT_MEMORY = 1, 0


class CApi:
    """The OrtApi function table of the onnxruntime wheel's shared library; each call's OrtStatus raised."""

    def __init__(self, library: Path) -> None:
        lib = ctypes.CDLL(str(library))
        lib.OrtGetApiBase.restype = POINTER(c_void_p)
        get_api = ctypes.CFUNCTYPE(c_void_p, c_uint32)(lib.OrtGetApiBase()[0])
        table = ctypes.cast(get_api(API_VERSION), POINTER(c_void_p))
        self._functions = {
            name: ctypes.CFUNCTYPE(result, *arguments)(table[index])
            for name, (index, result, arguments) in FUNCTIONS.items()
        }
        self.env = self.created("CreateEnv", _LOG_ERRORS, b"modelexport")
        self.cpu_memory = self.created("CreateCpuMemoryInfo", _ARENA_ALLOCATOR, _DEFAULT_MEMORY)
        self("CreateAndRegisterAllocator", self.env, self.cpu_memory, None)  # one arena for all our sessions

    def __call__(self, name: str, *arguments: Any) -> None:
        status = self._functions[name](*arguments)
        if status:
            message = self._functions["GetErrorMessage"](status).decode()
            self._functions["ReleaseStatus"](status)
            raise RuntimeError(f"onnxruntime {name}: {message}")

    def created(self, name: str, *arguments: Any) -> c_void_p:
        """The object a Create function writes to its last argument."""
        out = c_void_p()
        self(name, *arguments, byref(out))
        return out

    def release(self, name: str, handle: Any) -> None:
        self._functions[name](handle)

    def tensor(self, array: np.ndarray) -> c_void_p:
        """An OrtValue over `array`'s memory (no copy: the array must outlive it)."""
        shape = (c_int64 * array.ndim)(*array.shape)
        element = _element_type(array.dtype)
        pointer = c_void_p(array.ctypes.data)
        return self.created(
            "CreateTensorWithDataAsOrtValue", self.cpu_memory, pointer, array.nbytes, shape, array.ndim, element
        )

    def array(self, value: c_void_p) -> np.ndarray:
        """A copy of an OrtValue tensor's data."""
        info = self.created("GetTensorTypeAndShape", value)
        count, element = c_size_t(), c_int()
        self("GetDimensionsCount", info, byref(count))
        dims = (c_int64 * count.value)()
        self("GetDimensions", info, dims, count)
        self("GetTensorElementType", info, byref(element))
        self.release("ReleaseTensorTypeAndShapeInfo", info)
        dtype = _numpy_type(element.value)
        shape = tuple(dims)
        data = self.created("GetTensorMutableData", value)
        size = math.prod(shape) * dtype.itemsize
        if size == 0:
            return np.empty(shape, dtype)
        return np.frombuffer((ctypes.c_char * size).from_address(data.value), dtype).reshape(shape).copy()


@functools.cache
def _element_type(dtype: np.dtype) -> int:
    return onnx.helper.np_dtype_to_tensor_dtype(dtype)


@functools.cache
def _numpy_type(element: int) -> np.dtype:
    return onnx.helper.tensor_dtype_to_np_dtype(element)


LIBRARIES = ("libonnxruntime.so*", "libonnxruntime*.dylib", "onnxruntime.dll")  # in the wheel's capi folder
_api: list[CApi | None] = []
_loading = threading.Lock()


def c_api() -> CApi | None:
    """The process's CApi over the onnxruntime wheel's shared library (loaded once), None if the wheel has none."""
    with _loading:
        if not _api:
            import onnxruntime

            capi = Path(onnxruntime.__file__).parent / "capi"
            found = next((path for pattern in LIBRARIES for path in sorted(capi.glob(pattern))), None)
            _api.append(CApi(found) if found else None)
    return _api[0]


class PrepackedContainer:
    """One container of prepacked weights, and OrtValues over the weights' arrays, for every session of a package."""

    def __init__(self, api: CApi) -> None:
        self.api = api
        self.handle = self.api.created("CreatePrepackedWeightsContainer")
        self._values: dict[int, c_void_p] = {}
        self._arrays: list[np.ndarray] = []

    def value(self, array: np.ndarray) -> c_void_p:
        """The OrtValue over `array` (one per array; the array is kept while the container lives)."""
        if id(array) not in self._values:
            self._arrays.append(array)
            self._values[id(array)] = self.api.tensor(array)
        return self._values[id(array)]

    def session(self, graph_file: Path, options: Any, initializers: dict[str, np.ndarray], described: Any) -> Any:
        """A PrepackedSession of `graph_file` with `options`' attributes, reading `initializers` from their arrays."""
        api, handle = self.api, self.api.created("CreateSessionOptions")
        try:
            _apply(api, handle, options)
            for name, array in initializers.items():
                api("AddInitializer", handle, name.encode(), self.value(array))
            session = api.created(
                "CreateSessionWithPrepackedWeightsContainer", api.env, str(graph_file).encode(), handle, self.handle
            )
        finally:
            api.release("ReleaseSessionOptions", handle)
        return PrepackedSession(session, self, described)

    def __del__(self) -> None:
        for value in self._values.values():
            self.api.release("ReleaseValue", value)
        self.api.release("ReleasePrepackedWeightsContainer", self.handle)


def _apply(api: CApi, handle: c_void_p, options: Any) -> None:
    """The Python SessionOptions' attributes that matter here, the settings every modelexport session has, and
    the environment's one memory arena: the sessions of a package's buckets take turns, so one arena as large as
    the largest bucket's activations serves them all (without an arena each run maps and faults in its
    activations afresh: 13% of an int8 MiniLM pass; with one per session, memory grows with the buckets)."""
    api("SetIntraOpNumThreads", handle, options.intra_op_num_threads)
    api("SetInterOpNumThreads", handle, options.inter_op_num_threads)
    api("SetSessionGraphOptimizationLevel", handle, int(options.graph_optimization_level))
    api("SetSessionExecutionMode", handle, int(options.execution_mode))
    api("SetSessionLogSeverityLevel", handle, options.log_severity_level if options.log_severity_level >= 0 else 3)
    api("AddSessionConfigEntry", handle, b"session.use_env_allocators", b"1")
    if not options.enable_mem_pattern:
        api("DisableMemPattern", handle)
    for key, value in TUNED_CONFIG.items():
        api("AddSessionConfigEntry", handle, key.encode(), value.encode())


class PrepackedSession:
    """A C API session whose `run` takes and gives numpy arrays as InferenceSession.run does, on the prepacked
    weights of `container`; every other attribute is `described`'s, the Python session of the same graph
    (Optimum's ORTModel reads its inputs, outputs and providers there)."""

    def __init__(self, handle: c_void_p, container: PrepackedContainer, described: Any) -> None:
        self._handle, self.container, self._described = handle, container, described
        self._outputs = [output.name for output in described.get_outputs()]

    def __getattr__(self, name: str) -> Any:
        if name in ("_handle", "container", "_described", "_outputs"):
            raise AttributeError(name)
        return getattr(self._described, name)

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any], run_options: Any = None) -> list[Any]:
        api, names = self.container.api, output_names or self._outputs
        arrays = {name: np.ascontiguousarray(value) for name, value in input_feed.items()}
        inputs = [api.tensor(array) for array in arrays.values()]
        outputs = (c_void_p * len(names))()
        try:
            api(
                "Run",
                self._handle,
                None,
                (c_char_p * len(arrays))(*(n.encode() for n in arrays)),
                (c_void_p * len(inputs))(*inputs),
                len(inputs),
                (c_char_p * len(names))(*(n.encode() for n in names)),
                len(names),
                outputs,
            )
            return [api.array(c_void_p(value)) for value in outputs]
        finally:
            for value in [*inputs, *(c_void_p(v) for v in outputs if v)]:
                api.release("ReleaseValue", value)

    def __del__(self) -> None:
        self.container.api.release("ReleaseSession", self._handle)
