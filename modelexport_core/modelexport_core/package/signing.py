"""Signed packages through OpenSSF model-signing (elliptic-curve keys, offline): `sign_package`, `verify_package`.

The signature (`model.sig`, a Sigstore bundle) covers every file of the package directory but itself: one
changed byte, or one added or removed file, fails verification.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.package.integrity import intact_metadata
from modelexport_core.package.layout import SIGNATURE_FILE

SIGNING_EXTRA = "pip install 'modelexport-core[signing]'"


def _model_signing() -> Any:
    try:
        return importlib.import_module("model_signing")
    except ImportError:
        raise ModelExportError(f"Signing needs the model-signing library: {SIGNING_EXTRA}") from None


def _hashing(model_signing: Any) -> Any:
    """Every file but the signature, git's own files included (a package has no reason to hold them)."""
    return model_signing.hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILE], ignore_git_paths=False)


def _key(path: str | Path, kind: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ModelExportError(f"{kind} key not found: {path}")
    return path


def sign_package(package: str | Path, private_key: str | Path, password: str | None = None) -> Path:
    """Sign a package whose files match its export_metadata.json; return the signature written inside it."""
    package = Path(package)
    intact_metadata(package, "signed")
    model_signing = _model_signing()
    config = model_signing.signing.Config().set_hashing_config(_hashing(model_signing))
    config.use_elliptic_key_signer(private_key=_key(private_key, "Private"), password=password)
    try:
        config.sign(package, package / SIGNATURE_FILE)
    except ValueError as err:  # not an elliptic-curve private key, a wrong password
        raise ModelExportError(f"Cannot sign with {private_key}: {' '.join(str(err).split())}") from None
    return package / SIGNATURE_FILE


def verify_package(package: str | Path, public_key: str | Path) -> str:
    """Check the package against its signature; an AssertionError saying what differs when it does not match."""
    package = Path(package)
    if not (package / SIGNATURE_FILE).is_file():
        raise AssertionError(f"no {SIGNATURE_FILE}: the package is not signed")
    model_signing = _model_signing()
    config = model_signing.verifying.Config().set_hashing_config(_hashing(model_signing))
    config.use_elliptic_key_verifier(public_key=_key(public_key, "Public"))
    try:
        config.verify(package, package / SIGNATURE_FILE)
    except Exception as err:  # a mismatch (ValueError), another key's signature, a malformed bundle
        raise AssertionError(_mismatch(str(err)) or " ".join(str(err).split()) or type(err).__name__) from None
    return f"every file matches {SIGNATURE_FILE}, signed by the holder of {Path(public_key).name}'s private key"


def _mismatch(message: str) -> str:
    """model-signing's manifest difference as file names: changed, added, removed."""
    changed = re.findall(r"Hash mismatch for \\?'([^'\\]+)", message)  # quotes escaped inside a list's repr
    added = re.search(r"Extra files found in model '[^']*': ([^\"\]]+)", message)
    removed = re.search(r"Missing files in model '[^']*': ([^\"\]]+)", message)
    parts = [f"changed: {', '.join(changed)}"] if changed else []
    parts += [f"added: {added.group(1)}"] if added else []
    parts += [f"removed: {removed.group(1)}"] if removed else []
    return f"the package differs from what was signed ({'; '.join(parts)})" if parts else ""
