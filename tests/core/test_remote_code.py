"""A package whose config or tokenizer names its own Python code (`auto_map`) never runs it unasked: validate,
create_pipeline and ONNXAutoProcessor refuse it in one line; --trust-remote-code runs it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from modelexport_core import ModelExportError, ONNXAutoProcessor, create_pipeline

from conftest import run_modelexport

TASK = "text-classification"
REFUSED = "needs its own Python code to load (auto_map in its config): pass --trust-remote-code"
CUSTOM_CODE = """
from pathlib import Path

from transformers import BertConfig

Path({marker!r}).write_text("the package's own code ran")


class CustomConfig(BertConfig):
    model_type = "custom-bert"
"""


@pytest.fixture
def custom_package(text_package, tmp_path: Path) -> Path:
    """A text package of a model type transformers does not know, whose config.json maps AutoConfig to custom.py in
    the package (which leaves a file when it runs)."""
    package = shutil.copytree(text_package(TASK, 2), tmp_path / "custom")
    (package / "custom.py").write_text(CUSTOM_CODE.format(marker=str(package / "code-ran")))
    config = json.loads((package / "config.json").read_text())
    custom = {**config, "model_type": "custom-bert", "auto_map": {"AutoConfig": "custom.CustomConfig"}}
    (package / "config.json").write_text(json.dumps(custom))
    return package


def test_validate_runs_custom_code_when_trusted(custom_package: Path) -> None:
    run = run_modelexport("validate", custom_package, "--trust-remote-code")
    assert "PASS config: CustomConfig (custom-bert)" in run.stdout, run.stdout
    assert (custom_package / "code-ran").exists()


def test_create_pipeline_and_the_processor_refuse_custom_code(custom_package: Path) -> None:
    with pytest.raises(ModelExportError, match="^" + re.escape(f"The package {custom_package} {REFUSED}")):
        create_pipeline(TASK, custom_package)
    tokenizer_config = custom_package / "tokenizer_config.json"
    settings = {k: v for k, v in json.loads(tokenizer_config.read_text()).items() if k != "tokenizer_class"}
    tokenizer_config.write_text(json.dumps({**settings, "auto_map": {"AutoTokenizer": ["custom.Tok", None]}}))
    with pytest.raises(ModelExportError, match="^" + re.escape(f"The processor in {custom_package} {REFUSED}")):
        ONNXAutoProcessor.from_model(custom_package)
    assert not (custom_package / "code-ran").exists()
