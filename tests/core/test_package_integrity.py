"""A package cannot lie about its files: validate refuses listed paths outside the package without opening them,
and fails an unlisted, extra or changed file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelexport_core import validate_optimum_compatibility
from modelexport_core.package.files import sha256_of

from conftest import run_modelexport

TASK = "text-classification"


@pytest.fixture
def package(text_package, tmp_path: Path) -> Path:
    return shutil.copytree(text_package(TASK, 2), tmp_path / "package")


def _files_check(package: Path) -> tuple[bool, str]:
    check = validate_optimum_compatibility(package).checks[0]
    assert check.name == "files"
    return check.ok, check.detail


def _list(package: Path, path: str, sha256: str) -> None:
    metadata_file = package / "export_metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["files"].append({"path": path, "size": 0, "sha256": sha256})
    metadata_file.write_text(json.dumps(metadata))


@pytest.mark.parametrize("outside", ["../../../../etc/passwd", "/etc/hostname", "..\\\\secret", "a/../../x", ""])
def test_a_path_outside_the_package_is_refused_before_it_is_opened(package: Path, outside: str) -> None:
    sha = sha256_of(Path("/etc/hostname")) if outside == "/etc/hostname" else "0" * 64
    _list(package, outside, sha)
    ok, detail = _files_check(package)
    assert not ok and ("is not a plain relative path inside the package" in detail or "leads out" in detail)
    run = run_modelexport("validate", package)
    assert run.returncode == 1 and "Traceback" not in run.stderr and "FAIL files" in run.stdout


def test_a_link_leading_out_of_the_package_is_refused(package: Path) -> None:
    (package / "linked.txt").symlink_to("/etc/hostname")
    _list(package, "linked.txt", sha256_of(Path("/etc/hostname")))
    assert _files_check(package) == (False, "linked.txt leads out of the package")


def test_an_unlisted_file_fails_and_a_listed_one_must_match(package: Path) -> None:
    assert _files_check(package)[0]
    (package / "extra.txt").write_text("not exported")
    assert _files_check(package) == (False, "extra.txt is in the package but not listed in export_metadata.json")
    (package / "extra.txt").unlink()
    config = json.loads((package / "config.json").read_text())
    (package / "config.json").write_text(json.dumps({**config, "id2label": {"0": "forged"}}))
    assert _files_check(package) == (False, "config.json does not match its recorded sha256")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(alphabet="./\\\\abc:~", min_size=0, max_size=12))
def test_hostile_listed_paths_never_pass_and_never_crash(package: Path, path: str) -> None:
    _list(package, path, "0" * 64)
    ok, detail = _files_check(package)
    assert not ok and detail and "\n" not in detail
    metadata_file = package / "export_metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["files"].pop()
    metadata_file.write_text(json.dumps(metadata))
