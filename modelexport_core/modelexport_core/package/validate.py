"""`validate_optimum_compatibility`: is a package complete, static, and loadable by Optimum as it is?"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from modelexport_core.errors import ModelExportError, remote_code_refused
from modelexport_core.package.binding import check_bound
from modelexport_core.package.integrity import check_files
from modelexport_core.package.layout import (
    CONFIG_FILE,
    METADATA_FILE,
    MODEL_FILE,
    io_signature,
    load_graph,
    package_task,
    read_export_metadata,
)
from modelexport_core.package.ort_model import ort_model_class
from modelexport_core.package.signing import verify_package
from modelexport_core.quiet import quieted


@dataclass
class Check:
    """One validation check and its outcome."""

    name: str
    ok: bool
    detail: str


@dataclass
class ValidationReport:
    """The outcome of every check, in order."""

    package: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def first_failure(self) -> str:
        return next((f"{c.name}: {c.detail}" for c in self.checks if not c.ok), "")

    def to_dict(self) -> dict[str, Any]:
        return {"package": self.package, "ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def _check_files(package_dir: Path, metadata: dict[str, Any] | None) -> str:
    metadata = metadata or read_export_metadata(package_dir)
    if metadata is None:
        raise AssertionError(f"{METADATA_FILE} is missing")
    return check_files(package_dir, metadata)


def _check_onnx(package_dir: Path) -> str:
    onnx.checker.check_model(str(package_dir / MODEL_FILE))
    return "onnx.checker passed"


def _check_static(package_dir: Path) -> str:
    signature = io_signature(load_graph(package_dir / MODEL_FILE))
    dynamic = [v["name"] for v in signature["inputs"] + signature["outputs"] if None in v["shape"]]
    if dynamic:
        raise AssertionError(f"dynamic dims in {', '.join(dynamic)}")
    return ", ".join(f"{v['name']}{v['shape']}" for v in signature["inputs"])


def _check_config(package_dir: Path, trust_remote_code: bool) -> str:
    from transformers import AutoConfig

    if not (package_dir / CONFIG_FILE).is_file():
        raise AssertionError(f"{CONFIG_FILE} is missing")
    with remote_code_refused(CONFIG_FILE):
        config = AutoConfig.from_pretrained(package_dir, trust_remote_code=trust_remote_code)
    return f"{type(config).__name__} ({config.model_type})"


def fixed_shape_inputs(package_dir: Path) -> dict[str, np.ndarray]:
    """Inputs of exactly the model's fixed shapes: ones for integer inputs, noise for float ones."""
    return signature_inputs(io_signature(load_graph(package_dir / MODEL_FILE)))


def signature_inputs(signature: dict[str, Any]) -> dict[str, np.ndarray]:
    """Inputs of exactly the fixed shapes of an I/O signature: ones for integer inputs, noise for float ones."""
    rng = np.random.default_rng(0)
    inputs = {}
    for spec in signature["inputs"]:
        if None in spec["shape"]:
            raise ModelExportError(f"input {spec['name']} has dynamic dims: this needs a fixed-shape package")
        dtype = np.dtype(spec["dtype"])
        if np.issubdtype(dtype, np.integer):
            inputs[spec["name"]] = np.ones(spec["shape"], dtype=dtype)
        else:
            inputs[spec["name"]] = rng.standard_normal(spec["shape"]).astype(dtype)
    return inputs


def _check_optimum(package_dir: Path, trust_remote_code: bool) -> str:
    import torch

    model_class = ort_model_class(package_task(package_dir))
    with quieted(stderr=True), remote_code_refused(CONFIG_FILE):
        model = model_class.from_pretrained(package_dir, trust_remote_code=trust_remote_code)
        inputs = {k: torch.from_numpy(v) for k, v in fixed_shape_inputs(package_dir).items()}
        outputs = model(**inputs)
    produced = [k for k, v in outputs.items() if v is not None]
    broken = [k for k in produced if not torch.isfinite(outputs[k]).all()]
    if broken:
        raise AssertionError(f"{model_class.__name__} gave NaN or inf in {', '.join(broken)}: are the weights finite?")
    return f"{model_class.__name__} loaded and ran one forward ({', '.join(produced)})"


def _check_bound(package_dir: Path) -> str:
    metadata = read_export_metadata(package_dir)
    if metadata is None:
        raise AssertionError(f"{METADATA_FILE} is missing")
    return check_bound(package_dir, metadata)


def _checks(
    metadata: dict[str, Any] | None, trust_remote_code: bool, public_key: str | Path | None
) -> list[tuple[str, Callable[[Path], str]]]:
    """The checks in order; the binding of a written export_metadata.json to the graphs only once it is written,
    the signature only when a public key is given."""
    bound = [] if metadata is not None else [("metadata_bound", _check_bound)]
    signed = [] if public_key is None else [("signature", functools.partial(verify_package, public_key=public_key))]
    return [
        *signed,
        ("files", functools.partial(_check_files, metadata=metadata)),
        *bound,
        ("onnx_checker", _check_onnx),
        ("static_shapes", _check_static),
        ("config", functools.partial(_check_config, trust_remote_code=trust_remote_code)),
        ("optimum", functools.partial(_check_optimum, trust_remote_code=trust_remote_code)),
    ]


def validate_optimum_compatibility(
    package_dir: str | Path,
    metadata: dict[str, Any] | None = None,
    trust_remote_code: bool = False,
    public_key: str | Path | None = None,
) -> ValidationReport:
    """Run every check on a package directory; one entry per check, failures included, never raises.

    `metadata` is the package's export_metadata.json content, when it is not written yet (export validates first).
    A config that needs its own code fails its checks unless `trust_remote_code`: that code never runs unasked.
    With `public_key`, the package must also match its signature (`sign_package`).
    """
    package_dir = Path(package_dir)
    report = ValidationReport(package=str(package_dir))
    if not (package_dir / MODEL_FILE).is_file():
        report.checks.append(Check("files", False, f"no {MODEL_FILE} in {package_dir}"))
        return report
    for name, check in _checks(metadata, trust_remote_code, public_key):
        try:
            report.checks.append(Check(name, True, check(package_dir)))
        except Exception as err:  # a failed check is a result, not a crash
            report.checks.append(
                Check(name, False, str(err).strip().splitlines()[0] if str(err).strip() else repr(err))
            )
    return report
