"""Writing a package atomically and describing the files it holds."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelexport_core.errors import ExportStateError
from modelexport_core.package.claim import (
    REPLACED_MARK,
    STAGING_MARK,
    claimed,
    hidden_sibling,
    remove_stale,
    writing_to,
)
from modelexport_core.package.layout import read_export_metadata


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_files(directory: Path, exclude: tuple[str, ...] = ()) -> list[dict[str, object]]:
    """Every file under `directory` (relative name, size, sha256), sorted by name."""
    return [
        {"path": p.relative_to(directory).as_posix(), "size": p.stat().st_size, "sha256": sha256_of(p)}
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name not in exclude
    ]


def check_destination(out_dir: Path, force: bool) -> None:
    """Refuse an existing non-empty OUT_DIR unless `force`, and a destination that is not a directory."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportStateError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise ExportStateError(f"{out_dir} exists and is not empty: pass --force to replace it")


@contextlib.contextmanager
def staged_directory(out_dir: Path, force: bool) -> Iterator[Path]:
    """Yield a temporary directory beside `out_dir`; on success it replaces `out_dir`, on failure it vanishes.

    OUT_DIR is claimed for the whole export (a second export to it fails in one line) and re-checked at the
    rename: a directory that appeared there meanwhile, or replaced the one `force` was given for, is left as it is.
    """
    created = [parent for parent in out_dir.parents if not parent.exists()]  # deepest first
    try:
        _make_parent(out_dir)
        with claimed(out_dir):
            remove_stale(out_dir)
            check_destination(out_dir, force)
            before = _identity(out_dir)
            with _staging(out_dir) as staging:
                yield staging
                _replace(staging, out_dir, before, force)
    except BaseException:
        _remove_empty(created)
        raise


@contextlib.contextmanager
def _staging(out_dir: Path) -> Iterator[Path]:
    with writing_to(out_dir.parent):
        staging = Path(tempfile.mkdtemp(prefix=hidden_sibling(out_dir, STAGING_MARK), dir=out_dir.parent))
        staging.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would make the package private to its writer
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful rename


def _make_parent(out_dir: Path) -> None:
    with writing_to(out_dir.parent):
        out_dir.parent.mkdir(parents=True, exist_ok=True)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_empty(directories: list[Path]) -> None:
    """Remove the directories an export created for OUT_DIR's parent, deepest first, while they are empty."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            return


def _replace(staging: Path, out_dir: Path, before: tuple[int, int] | None, force: bool) -> None:
    """Move the finished package to OUT_DIR, replacing only the directory that was there when the export began."""
    now = _identity(out_dir)
    if now is not None and now != before:
        raise ExportStateError(f"{out_dir} appeared or was replaced while the export ran: left as it is, not replaced")
    check_destination(out_dir, force)  # files put into an empty OUT_DIR meanwhile
    if now is None:
        staging.rename(out_dir)
        return
    old = out_dir.with_name(hidden_sibling(out_dir, REPLACED_MARK) + staging.name[-8:])
    out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def package_storage(directory: Path) -> dict[str, Any]:
    """Bytes per file of a package directory, their total, and what its graphs share (`export_metadata.json`'s
    `shared_weights`: the weights file's bytes, and the bytes it saves against one copy per graph)."""
    files = {p.relative_to(directory).as_posix(): p.stat().st_size for p in sorted(directory.rglob("*")) if p.is_file()}
    shared = (read_export_metadata(directory) or {}).get("shared_weights")
    return {"files": files, "total_bytes": sum(files.values()), "shared_weights": shared}
