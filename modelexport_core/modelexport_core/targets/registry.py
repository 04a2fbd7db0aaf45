"""Execution targets: the ones the plugins declare, and onnxruntime sessions built for one of them."""

from __future__ import annotations

from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.plugins.manager import targets
from modelexport_core.targets.cpu import CPU_PROVIDER
from modelexport_core.targets.target import ExecutionTarget

# Session config keys (onnxruntime_session_options_config_keys.h).
_DISABLE_CPU_FALLBACK = "session.disable_cpu_ep_fallback"
_RECORD_PLACEMENT = "session.record_ep_graph_assignment_info"
# The settings every modelexport session gets (`tuned`), each measured on all-MiniLM-L6-v2 at batch 8, 2 threads:
TUNED_CONFIG = {
    # intra-op threads spin only within a run. By default they spin on after it, and a bucketed package's next
    # batch, on another session, then shares the cores with them: 4x slower with 5 sessions taking turns.
    "session.force_spinning_stop": "1",
    # Add + LayerNormalization stay two kernels: the fused CPU kernel is slower than both together, 15% of an int8
    # run and 4% of an fp32 one (AVX512-VNNI EPYC).
    "optimization.disable_specified_optimizers": "SkipLayerNormFusion",
}


def session_options(threads: int | None = None) -> Any:
    """onnxruntime SessionOptions with `threads` intra-op threads and one inter-op thread (defaults without), and
    modelexport's settings (`tuned`)."""
    import onnxruntime

    options = tuned(onnxruntime.SessionOptions())
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def tuned(options: Any) -> Any:
    """`options` with the config entries of TUNED_CONFIG."""
    for key, value in TUNED_CONFIG.items():
        options.add_session_config_entry(key, value)
    return options


def get_target(name: str, require_available: bool = True) -> ExecutionTarget:
    """The named target, or a user error naming the known targets or the extra to install."""
    known = targets()
    if name not in known:
        raise ModelExportError(f"Unknown target '{name}': choose one of {', '.join(sorted(known))}")
    target = known[name]
    if require_available and not target.is_available():
        raise ModelExportError(f"Target {name} is not available on this machine: {target.install_hint}")
    return target


def apply_export_rewrites(model_proto: Any, target: ExecutionTarget) -> dict[str, int]:
    """Run the target's export-time rewrites on a model; how many places each one changed."""
    return {rewrite.__name__: rewrite(model_proto) for rewrite in target.export_rewrites}


def target_session(
    model: str | bytes,
    target: ExecutionTarget,
    cpu_fallback: bool = False,
    record_placement: bool = False,
    threads: int | None = None,
    options: Any = None,
) -> Any:
    """An onnxruntime session of `model` on `target`; without `cpu_fallback` it fails when a node needs the CPU.

    `threads` sets the intra-op thread count (one inter-op thread); onnxruntime's default otherwise. `options`
    (onnxruntime.SessionOptions) are the caller's to start from.
    """
    options = options or session_options(threads)
    options.log_severity_level = 3  # providers' notices are not the user's business
    if not cpu_fallback and target.provider != CPU_PROVIDER:
        options.add_session_config_entry(_DISABLE_CPU_FALLBACK, "1")
    if record_placement:
        options.add_session_config_entry(_RECORD_PLACEMENT, "1")
    return target.build_session(model, options)
