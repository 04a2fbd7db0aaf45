"""Static QDQ quantization for NPUs (w8a16, w8a8): the graph prepared for it, calibrated on realistic inputs,
the most sensitive modules kept at 16-bit weights."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from modelexport_core.package.retag import retag
from modelexport_core.quantize.search import Feeds, quantizable_modules
from modelexport_core.quiet import quieted

EXTREME_FILL = -1e30  # attention masks fill with float32's minimum (-3.4e38): nothing quantizes that range
QUANTIZABLE_FILL = -1e4  # what softmax still turns into 0, within fp16 and a 16-bit scale


def prepare_for_qdq(model: onnx.ModelProto) -> dict[str, int]:
    """Rewrite in place what static quantization and the HTP need: the unfused GELU (Erf, which QNN refuses
    quantized) fused into one Gelu node, and extreme fill constants brought to -1e4. How many of each."""
    from onnxruntime.quantization.fusions import FusionGelu
    from onnxruntime.quantization.onnx_model import ONNXModel

    original = onnx.ModelProto()
    original.CopyFrom(model)
    before = sum(node.op_type == "Erf" for node in model.graph.node)
    FusionGelu(ONNXModel(model)).apply()
    retag(model, original)
    fused = before - sum(node.op_type == "Erf" for node in model.graph.node)
    return {"fused_gelu": fused, "extreme_fills": _clamp_extreme_fills(model)}


def _clamp_extreme_fills(model: onnx.ModelProto) -> int:
    tensors = [*model.graph.initializer]
    tensors += [
        a.t for node in model.graph.node if node.op_type == "Constant" for a in node.attribute if a.name == "value"
    ]
    changed = 0
    for tensor in tensors:
        if tensor.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(tensor)
        if (values <= EXTREME_FILL).any():
            tensor.CopyFrom(
                numpy_helper.from_array(np.where(values <= EXTREME_FILL, QUANTIZABLE_FILL, values), tensor.name)
            )
            changed += 1
    return changed


def quantize_qdq(
    model: onnx.ModelProto, keep_16bit: list[str], calibration: Feeds, activation_bits: int
) -> onnx.ModelProto:
    """QDQ with uint8 weights and `activation_bits` activations (MinMax calibration on `calibration`, the QNN
    execution provider's settings), the modules in `keep_16bit` with 16-bit weights; every node of the result
    carries hierarchy tags."""
    from onnxruntime.quantization import QuantType, quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.metadata_props[:]  # onnxruntime's save-and-reload inside quantization trips over them
    with (
        tempfile.TemporaryDirectory() as directory,
        quieted("root"),
    ):  # it warns of our 16-bit weights (the HTP runs them)
        config = get_qnn_qdq_config(
            bare,
            _Reader(calibration),
            activation_type=QuantType.QUInt16 if activation_bits == 16 else QuantType.QUInt8,
            weight_type=QuantType.QUInt8,
            init_overrides=_sixteen_bits(model, keep_16bit) or None,
        )
        quantize(bare, Path(directory) / "qdq.onnx", config)
        quantized = onnx.load(Path(directory) / "qdq.onnx")
    retag(quantized, model)
    quantized.metadata_props.extend(model.metadata_props)
    return quantized


def _sixteen_bits(model: onnx.ModelProto, modules: list[str]) -> dict[str, list[dict]]:
    from onnxruntime.quantization import QuantType

    found = quantizable_modules(model)
    weights = [node.input[1] for path in modules for node in found.get(path, [])]
    return {weight: [{"quant_type": QuantType.QUInt16}] for weight in weights}


def eight_bit_weights(model: onnx.ModelProto, keep: list[str]) -> onnx.ModelProto:
    """The float graph with the weights of every module outside `keep` rounded as uint8 QDQ would (per tensor,
    min-max): the cheap stand-in that ranks the modules' sensitivity to w8a16 (its 16-bit activations add
    little)."""
    rounded = onnx.ModelProto()
    rounded.CopyFrom(model)
    weights = {
        node.input[1] for path, nodes in quantizable_modules(model).items() if path not in keep for node in nodes
    }
    for tensor in rounded.graph.initializer:
        if tensor.name in weights:
            tensor.CopyFrom(numpy_helper.from_array(_uint8_rounded(numpy_helper.to_array(tensor)), tensor.name))
    return rounded


def _uint8_rounded(values: np.ndarray) -> np.ndarray:
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    scale = (high - low) / 255 or 1.0
    zero = np.round(-low / scale)
    return ((np.clip(np.round(values / scale) + zero, 0, 255) - zero) * scale).astype(values.dtype)


class _Reader:
    """onnxruntime's calibration data reader over feeds."""

    def __init__(self, feeds: Feeds) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)
