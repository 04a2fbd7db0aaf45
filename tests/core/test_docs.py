"""The plugin author's guide documents the whole extension surface: every hook spec, every Modality member."""

from __future__ import annotations

import re

from modelexport_core import Modality
from modelexport_core.plugins import hookspecs

from conftest import REPO_ROOT

GUIDE = REPO_ROOT / "docs" / "plugins.md"


def _documented(guide: str) -> set[str]:
    """The names the guide documents: its `### name` headings and its `- `name`...` list items."""
    headings = re.findall(r"^### `(\w+)`", guide, flags=re.M)
    items = re.findall(r"^- `(\w+)", guide, flags=re.M)
    return {*headings, *items}


def test_every_hook_spec_is_documented_in_the_guide() -> None:
    specs = {name for name, obj in vars(hookspecs).items() if hasattr(obj, "modelexport_spec")}
    assert specs - _documented(GUIDE.read_text()) == set()


def test_every_modality_method_and_attribute_is_documented_in_the_guide() -> None:
    members = {name for name in vars(Modality) if not name.startswith("_")}
    assert {"name", "length_dim", "name_dims", "corpus"} <= members
    assert members - _documented(GUIDE.read_text()) == set()


def test_the_readme_links_the_guide_and_names_every_hook() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "(docs/plugins.md)" in readme
    specs = {name for name, obj in vars(hookspecs).items() if hasattr(obj, "modelexport_spec")}
    plugins_section = readme.split("### Plugins", 1)[1].split("\n### ", 1)[0]
    assert all(f"`{name}" in plugins_section for name in specs)


def test_a_member_missing_from_the_guide_is_found() -> None:
    guide = GUIDE.read_text().replace("- `corpus()`", "- corpus()")
    assert "corpus" not in _documented(guide) and "corpus" in _documented(GUIDE.read_text())
