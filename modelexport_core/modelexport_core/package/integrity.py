"""The file checks of a package: every file listed in export_metadata.json with its sha256, and nothing else."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.package.binding import check_bound
from modelexport_core.package.files import sha256_of
from modelexport_core.package.layout import METADATA_FILE, SIGNATURE_FILE, read_export_metadata


def check_files(package_dir: Path, metadata: dict[str, Any]) -> str:
    """Every listed path is a plain relative path inside the package (checked before any file is opened), every
    file of the package is listed (but the metadata and a signature) and nothing else is, and each matches its
    sha256; an AssertionError saying what does not."""
    listed = [str(entry.get("path", "")) for entry in metadata["files"]]
    for listed_path in listed:
        check_inside(package_dir, listed_path)
    on_disk = {p.relative_to(package_dir).as_posix() for p in package_dir.rglob("*") if not p.is_dir()}
    unlisted = sorted(on_disk - set(listed) - {METADATA_FILE, SIGNATURE_FILE})
    if unlisted:
        raise AssertionError(f"{unlisted[0]} is in the package but not listed in {METADATA_FILE}")
    for entry in metadata["files"]:
        path = package_dir / entry["path"]
        if not path.is_file():
            raise AssertionError(f"{entry['path']} is missing")
        if sha256_of(path) != entry["sha256"]:
            raise AssertionError(f"{entry['path']} does not match its recorded sha256")
    return f"{len(metadata['files'])} files match their sha256"


def check_inside(package_dir: Path, listed: str) -> None:
    """A listed path must be relative, plain (no `..`, no backslash, no drive) and stay inside the package, links
    followed."""
    pure = PurePosixPath(listed)
    plain = listed and not pure.is_absolute() and "\\" not in listed and ".." not in pure.parts
    if not plain or PureWindowsPath(listed).drive:
        raise AssertionError(f"{listed!r} is not a plain relative path inside the package")
    if not (package_dir / pure).resolve().is_relative_to(package_dir.resolve()):
        raise AssertionError(f"{listed} leads out of the package")


def intact_metadata(package: Path, refused: str) -> dict[str, Any]:
    """The metadata of a package whose files match it and whose graphs record it; else a user error saying the
    package is not `refused` (what was asked of it: "signed", "compiled") and why."""
    metadata = read_export_metadata(package)
    if metadata is None:
        raise ModelExportError(f"{package} is not a modelexport package (no {METADATA_FILE})")
    try:
        check_files(package, metadata)
        check_bound(package, metadata)
    except AssertionError as err:
        raise ModelExportError(f"{package} is not {refused}: {err}") from None
    return metadata
