"""Claiming OUT_DIR for one export: a lock beside it, and the removal of what killed exports left there."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from modelexport_core.errors import ExportStateError

STAGING_MARK = "partial"  # .OUT.partial-XXXXXXXX: the package being written
REPLACED_MARK = "old"  # .OUT.old-XXXXXXXX: the package --force is replacing, until the new one is in place


def hidden_sibling(out_dir: Path, mark: str) -> str:
    """The prefix of the hidden directories an export of `out_dir` writes beside it."""
    return f".{out_dir.name}.{mark}-"


@contextlib.contextmanager
def claimed(out_dir: Path) -> Iterator[None]:
    """Hold OUT_DIR's lock (`.OUT.lock` beside it) while the block runs; a second export to the same OUT_DIR
    fails in one line. The kernel releases the lock when its holder dies, so a killed export never blocks the
    next one, which removes what the killed one left (`remove_stale`)."""
    lock_path = out_dir.with_name(f".{out_dir.name}.lock")
    descriptor = _locked(lock_path, out_dir)
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        os.close(descriptor)


def _locked(lock_path: Path, out_dir: Path) -> int:
    while True:
        with writing_to(out_dir.parent):
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 32).decode(errors="replace").strip()
            os.close(descriptor)
            running = f"Another export to {out_dir} is running" + (f" (pid {holder})" if holder.isdigit() else "")
            raise ExportStateError(f"{running}: wait for it to finish or choose another OUT_DIR") from None
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(descriptor).st_ino == lock_path.stat().st_ino:
                return descriptor
        os.close(descriptor)  # its last holder removed the file between our open and lock: take the new one


def remove_stale(out_dir: Path) -> int:
    """Remove the hidden directories killed exports of `out_dir` left beside it (and only those); call it while
    holding the claim. How many were removed."""
    pattern = re.compile(
        rf"\.{re.escape(out_dir.name)}\.({STAGING_MARK}|{REPLACED_MARK})-[a-z0-9_]{{8}}", flags=re.ASCII
    )
    stale = [p for p in out_dir.parent.iterdir() if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]
    for directory in stale:
        shutil.rmtree(directory, ignore_errors=True)
    return len(stale)


@contextlib.contextmanager
def writing_to(directory: Path) -> Iterator[None]:
    """An OSError inside, as the user error that `directory` cannot be written."""
    try:
        yield
    except OSError as err:
        raise ExportStateError(f"Cannot write to {directory}: {err.strerror or err}") from err
