"""Writing a package atomically and describing the files it holds."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from modelexport_core.errors import ExportStateError


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
    """Yield a temporary directory beside `out_dir`; on success it replaces `out_dir`, on failure it vanishes."""
    check_destination(out_dir, force)
    created = [parent for parent in out_dir.parents if not parent.exists()]  # deepest first
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
        staging.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would make the package private to its writer
    except OSError as err:
        _remove_empty(created)
        raise ExportStateError(f"Cannot write to {out_dir.parent}: {err.strerror or err}") from err
    try:
        yield staging
        _replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise


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


def _replace(staging: Path, out_dir: Path) -> None:
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{staging.name[-8:]}")
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out_dir)
