"""`validate --target`: does a package run wholly on a target, and how far do its outputs drift from the CPU?"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelexport_core.errors import ModelExportError
from modelexport_core.package.buckets import graph_files
from modelexport_core.package.hierarchy import iter_nodes
from modelexport_core.package.layout import find_model_file, io_signature, load_graph
from modelexport_core.package.validate import signature_inputs
from modelexport_core.targets.cpu import CPU
from modelexport_core.targets.deviation import agreement, deviation
from modelexport_core.targets.placement import PlacedNode, node_placement
from modelexport_core.targets.registry import target_session
from modelexport_core.targets.target import ExecutionTarget

# fp16 (how NPUs such as QNN's HTP run float graphs) keeps 11 significant bits: each op rounds to within
# 2**-11 (4.9e-4) of the value, and a few dozen ops in a row compound that to about 1%. A larger deviation
# is more than precision: a broken op, an overflow, a constant fp16 cannot hold.
DEFAULT_TOLERANCE = 0.02
# ...unless the output is small beside the hidden states its rounding comes from (a classifier's logits of
# 0.01): its deviation relative to its own peak is then large while its shape is intact. Such an output passes
# when it still agrees as a whole: PSNR (AI Hub's measure) and cosine both high. A real fault fails both.
MIN_PSNR_DB = 25.0
MIN_COSINE = 0.999


@dataclass
class OutputDeviation:
    """One output on the target against the CPU: the largest |target - cpu|, the output's largest magnitude on
    CPU, their cosine and the PSNR in dB."""

    name: str
    deviation: float
    scale: float
    cosine: float = 1.0
    psnr: float = float("inf")

    @property
    def relative(self) -> float:
        return self.deviation / self.scale if self.scale else self.deviation

    def within(self, tolerance: float, min_psnr: float = MIN_PSNR_DB) -> bool:
        """Within `tolerance` of its peak, or (a small output) in agreement as a whole: PSNR and cosine."""
        return self.relative <= tolerance or (self.psnr >= min_psnr and self.cosine >= MIN_COSINE)


@dataclass
class TargetReport:
    """Where each node of a package runs on a target, and each output's deviation from the CPU."""

    package: str
    graph: str
    target: str
    provider: str
    tolerance: float
    min_psnr: float
    nodes: int
    fallback: list[PlacedNode] = field(default_factory=list)
    deviations: list[OutputDeviation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        within = all(d.within(self.tolerance, self.min_psnr) for d in self.deviations)
        return not self.fallback and bool(self.deviations) and within

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (an infinite PSNR, identical outputs, as null), with the verdict."""
        data = asdict(self)
        for output in data["deviations"]:
            output["psnr"] = output["psnr"] if math.isfinite(output["psnr"]) else None
        return {**data, "ok": self.ok}


def refuse_unsupported_ops(model_file: Path, target: ExecutionTarget) -> None:
    """A user error when the model holds an op the target never runs (e.g. dynamic int8 on qnn-htp)."""
    op_types = {node.op_type for node in iter_nodes(load_graph(model_file).graph)}
    refused = sorted(op_types & set(target.refused_ops))
    if refused:
        raise ModelExportError(f"{model_file.parent.name} {target.refused_ops[refused[0]]}")


def output_deviations(
    model_file: Path, target: ExecutionTarget, inputs: dict[str, np.ndarray]
) -> list[OutputDeviation]:
    """Run `inputs` on the target (CPU fallback disabled) and on the CPU; each output's largest deviation."""
    session = target_session(str(model_file), target)
    names = [output.name for output in session.get_outputs()]
    on_target = session.run(None, inputs)
    on_cpu = target_session(str(model_file), CPU).run(None, inputs)
    return [
        OutputDeviation(name, *deviation(t, c), *agreement(t, c))
        for name, t, c in zip(names, on_target, on_cpu, strict=True)
    ]


def validate_on_target(
    package: str | Path,
    target: ExecutionTarget,
    inputs: dict[str, np.ndarray] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    graph: str | None = None,
    min_psnr: float = MIN_PSNR_DB,
) -> TargetReport:
    """Placement of every node (from onnxruntime) and, when all run on the target, each output's deviation.

    `graph` names another file of the package to check (a shape bucket's). `inputs` default to the
    graph's fixed-shape inputs (ones for integer inputs). The deviation is relative to the output's largest
    magnitude on CPU.
    """
    model_file = find_model_file(package)
    model_file = model_file.with_name(graph) if graph else model_file
    refuse_unsupported_ops(model_file, target)
    placement = node_placement(model_file, target)
    report = TargetReport(
        package=str(package),
        graph=model_file.name,
        target=target.name,
        provider=target.provider,
        tolerance=tolerance,
        min_psnr=min_psnr,
        nodes=len(placement),
        fallback=[node for node in placement if node.provider != target.provider],
    )
    if not report.fallback:
        inputs = inputs or signature_inputs(io_signature(load_graph(model_file)))
        report.deviations = output_deviations(model_file, target, inputs)
    return report


def validate_every_graph_on_target(
    package: str | Path, target: ExecutionTarget, tolerance: float = DEFAULT_TOLERANCE, min_psnr: float = MIN_PSNR_DB
) -> list[TargetReport]:
    """`validate_on_target` on every graph of the package: model.onnx, then each other shape bucket."""
    graphs = graph_files(find_model_file(package))
    return [
        validate_on_target(package, target, tolerance=tolerance, graph=graph, min_psnr=min_psnr) for graph in graphs
    ]
