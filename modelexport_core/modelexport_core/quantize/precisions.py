"""The precisions an export can ask for, each with how it converts a graph and how its gate ranks modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import onnx

from modelexport_core.errors import ModelExportError
from modelexport_core.quantize.fp16 import to_fp16
from modelexport_core.quantize.int8 import quantize_graph
from modelexport_core.quantize.qdq import eight_bit_weights, prepare_for_qdq, quantize_qdq
from modelexport_core.quantize.search import Convert, Feeds
from modelexport_core.quantize.smooth import smooth_graphs

Graphs = dict[str, onnx.ModelProto]
Prepare = Callable[[Graphs, dict[str, Feeds]], tuple[Graphs, dict[str, int]]]  # (graphs, calibration) -> rewritten

NPU_MIN_MEAN = 0.998  # embeddings of an NPU package: the mean cosine to fp32 the gate asks for beside the worst


@dataclass(frozen=True)
class Precision:
    """One precision: `convert(graph, kept modules, calibration feeds)`, the cheap `proxy` that ranks each
    module's sensitivity to it, what kept modules stay at, and how `prepare` rewrites the graphs first (each
    graph with its calibration feeds; the float graphs stay the gate's reference)."""

    name: str
    method: str
    kept_at: str
    convert: Callable[[onnx.ModelProto, list[str], Feeds], onnx.ModelProto]
    proxy: Convert
    prepare: Prepare | None = None
    calibrated: bool = False
    min_mean: float = 0.0  # embeddings: the mean cosine the gate also asks for, beside the worst


def _each_graph(rewrite: Callable[[onnx.ModelProto], dict[str, int]]) -> Prepare:
    """A Prepare that rewrites a copy of each graph in place with `rewrite` (the counts: the last graph's)."""

    def prepare(models: Graphs, _: dict[str, Feeds]) -> tuple[Graphs, dict[str, int]]:
        prepared, counts = {}, {}
        for name, model in models.items():
            prepared[name] = onnx.ModelProto()
            prepared[name].CopyFrom(model)
            counts = rewrite(prepared[name])
        return prepared, counts

    return prepare


def _static_qdq(activation_bits: int) -> Precision:
    """w8a16 or w8a8: uint8 weights, activations of `activation_bits`, kept modules at 16-bit weights."""
    return Precision(
        f"w8a{activation_bits}",
        f"static QDQ, uint8 weights, uint{activation_bits} activations, MinMax calibration (QNN settings); for NPUs",
        "16-bit weights",
        lambda graph, kept, feeds: quantize_qdq(graph, kept, feeds, activation_bits),
        eight_bit_weights,
        _each_graph(prepare_for_qdq),
        calibrated=True,
        min_mean=NPU_MIN_MEAN,
    )


PRECISIONS = {
    precision.name: precision
    for precision in (
        Precision(
            "int8",
            "dynamic int8 (per-channel int8 weights, uint8 activations; smoothed, outlier channels split off in fp32, "
            "on calibration inputs), onnxruntime; for CPUs",
            "fp32",
            lambda graph, kept, _: quantize_graph(graph, kept),
            quantize_graph,
            smooth_graphs,
        ),
        *(_static_qdq(bits) for bits in (16, 8)),
        Precision(
            "fp16",
            "fp16 weights and compute, float32 inputs and outputs",
            "fp32",
            lambda graph, kept, _: to_fp16(graph, kept),
            to_fp16,
            min_mean=NPU_MIN_MEAN,
        ),
    )
}


def get_precision(name: str) -> Precision:
    """The named precision, or a user error listing them."""
    if name not in PRECISIONS:
        choices = ", ".join(n for n in PRECISIONS if n != "fp16")
        raise ModelExportError(f"--quantize takes {choices} (fp16 is --dtype fp16), not {name!r}")
    return PRECISIONS[name]
