"""The plugin registry: every hook spec documented and tested, a throw-away plugin listed and called, loading."""

from __future__ import annotations

import inspect
import json
from importlib.metadata import entry_points, version
from pathlib import Path
from typing import Any

import pytest
from transformers import (
    FeatureExtractionPipeline,
    ImageClassificationPipeline,
    PreTrainedTokenizerBase,
    TextClassificationPipeline,
)
from typer.testing import CliRunner

from modelexport_core import Modality, hookimpl
from modelexport_core.cli import app
from modelexport_core.serve.models import ort_model_class
from modelexport_core.plugins import hookspecs
from modelexport_core.plugins.hookspecs import ExecutionTarget
from modelexport_core.plugins.manager import (
    LOAD_PLUGINS_ENV,
    get_plugin_manager,
    hook,
    list_plugins,
    modality_for_inputs,
)
from modelexport_core.serve.fixed import FixedShapeProcessor

from conftest import cli_env, run_modelexport

SPEC_NAMES = sorted(name for name, obj in vars(hookspecs).items() if hasattr(obj, "modelexport_spec"))
THROWAWAY = Modality(name="throwaway", tasks=("throwaway-task",), input_names=("throwaway_values",))
TEXT_TASKS = ["feature-extraction", "fill-mask", "question-answering", "text-classification", "token-classification"]


class ThrowawayProcessor:
    """A processor of the throw-away modality: none of transformers' processor base classes."""

    def __init__(self, source: str = "") -> None:
        self.source = source


class ThrowawayPipeline(TextClassificationPipeline):
    """The pipeline class the throw-away plugin offers for its task."""


class ThrowawayORTModel:
    """The ORTModel class the throw-away plugin names for its task."""


class ThrowawayOnnxConfig:
    """The OnnxConfig the throw-away plugin supplies for its model type."""

    def __init__(self, config: Any, task: str) -> None:
        self.config, self.task = config, task


THROWAWAY_TARGET = ExecutionTarget(
    name="throwaway-target",
    provider="CPUExecutionProvider",
    is_available=lambda: False,
    build_session=lambda model, options: None,
    install_hint="pip install throwaway-runtime",
)


class ThrowawayPlugin:
    """Implements every hook for the `throwaway` modality only, and records each call it answers."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _answers(self, hook_name: str, modality: str | None = None) -> bool:
        if modality not in (None, THROWAWAY.name):
            return False
        self.calls.append(hook_name)
        return True

    @hookimpl
    def register_modalities(self) -> list[Modality]:
        self._answers("register_modalities")
        return [THROWAWAY]

    @hookimpl
    def register_targets(self) -> list[ExecutionTarget]:
        self._answers("register_targets")
        return [THROWAWAY_TARGET]

    @hookimpl
    def detect_shapes(self, modality: str, input_shapes: dict[str, list[int | None]]) -> dict | None:
        if not self._answers("detect_shapes", modality):
            return None
        batch_size, length = input_shapes["throwaway_values"]
        return {"batch_size": batch_size, "throwaway_length": length}

    @hookimpl
    def default_shapes(self, modality: str, package_dir: Path) -> dict[str, int] | None:
        return {"throwaway_length": 7} if self._answers("default_shapes", modality) else None

    @hookimpl
    def copy_configs(self, modality: str, source: str, out_dir: Path, hub_kwargs: dict) -> list[str] | None:
        if not self._answers("copy_configs", modality):
            return None
        (out_dir / "throwaway_config.json").write_text(json.dumps({"source": source}))
        return ["throwaway_config.json"]

    @hookimpl
    def wrap_processor(self, modality: str, processor: Any, shapes: dict[str, int]) -> Any | None:
        if not isinstance(processor, ThrowawayProcessor) or not self._answers("wrap_processor", modality):
            return None
        return FixedShapeProcessor(processor, shapes)

    @hookimpl
    def load_processor(self, modality: str, processor_dir: str) -> Any | None:
        return ThrowawayProcessor(processor_dir) if self._answers("load_processor", modality) else None

    @hookimpl
    def route_processor(self, pipeline_class: type, processor: Any) -> dict[str, Any] | None:
        if not isinstance(getattr(processor, "wrapped", processor), ThrowawayProcessor):
            return None
        self._answers("route_processor")
        return {"throwaway_processor": processor}

    @hookimpl
    def pipeline_class(self, task: str, modality: str) -> type | None:
        ours = task == "throwaway-task" and self._answers("pipeline_class", modality)
        return ThrowawayPipeline if ours else None

    @hookimpl
    def onnx_config(self, config: Any, task: str) -> Any | None:
        if getattr(config, "model_type", None) != "throwaway" or not self._answers("onnx_config"):
            return None
        return ThrowawayOnnxConfig(config, task)

    @hookimpl
    def ort_model_class(self, task: str) -> type | None:
        return ThrowawayORTModel if task == "throwaway-task" and self._answers("ort_model_class") else None

    @hookimpl
    def sample_inputs(self, modality: str, sequence_length: int) -> dict[str, list[Any]] | None:
        return {"short": ["x y z"]} if self._answers("sample_inputs", modality) else None

    @hookimpl
    def benchmark_kwargs(self, task: str) -> dict[str, dict[str, Any]] | None:
        ours = task == "throwaway-task" and self._answers("benchmark_kwargs")
        return {"pipeline": {"throwaway_option": 1}, "processor": {}} if ours else None

    @hookimpl
    def benchmark_corpus(self, modality: str) -> list[Any] | None:
        return ["x", "x y z"] if self._answers("benchmark_corpus", modality) else None


@pytest.fixture
def all_plugins(monkeypatch: pytest.MonkeyPatch):
    """A fresh plugin manager with every installed plugin (MODELEXPORT_LOAD_PLUGINS unset)."""
    monkeypatch.delenv(LOAD_PLUGINS_ENV, raising=False)
    get_plugin_manager.cache_clear()
    yield get_plugin_manager()
    get_plugin_manager.cache_clear()


@pytest.fixture
def throwaway(all_plugins) -> ThrowawayPlugin:
    """The throw-away plugin, registered on the process's plugin manager for one test."""
    plugin = ThrowawayPlugin()
    all_plugins.register(plugin, name="throwaway")
    try:
        yield plugin
    finally:
        all_plugins.unregister(plugin)


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer_dir: Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


# ---- the registry ----


def test_every_hookspec_has_a_docstring_and_a_test_named_after_it() -> None:
    assert len(SPEC_NAMES) >= 9
    docs = {name: (inspect.getdoc(getattr(hookspecs, name)) or "").strip() for name in SPEC_NAMES}
    undocumented = [name for name, doc in docs.items() if not doc]
    assert undocumented == []
    tested = {name.removeprefix("test_hook_") for name in globals() if name.startswith("test_hook_")}
    assert tested == set(SPEC_NAMES)


def test_plugin_manager_knows_exactly_the_documented_specs(all_plugins) -> None:
    specs = {name for name in dir(all_plugins.hook) if not name.startswith("_")}
    assert specs == set(SPEC_NAMES)


def test_throwaway_plugin_is_listed_with_its_modality_tasks_and_hooks(throwaway: ThrowawayPlugin) -> None:
    rows = {row.plugin: row for row in list_plugins()}
    row = rows["throwaway"]
    assert (row.distribution, row.version) == ("-", "-")  # registered by hand, not from a distribution
    assert (row.modality, row.tasks, row.targets) == (("throwaway",), ("throwaway-task",), ("throwaway-target",))
    assert list(row.hooks) == SPEC_NAMES
    assert rows["text"].distribution == "modelexport-text"
    assert rows["core"].distribution == "modelexport-core"


def test_throwaway_plugin_is_listed_by_plugins_list_json(throwaway: ThrowawayPlugin) -> None:
    result = CliRunner().invoke(app, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["plugin"]: row for row in json.loads(result.stdout)}
    assert rows["throwaway"]["modality"] == ["throwaway"]
    assert rows["throwaway"]["tasks"] == ["throwaway-task"]
    assert rows["throwaway"]["targets"] == ["throwaway-target"]
    assert rows["throwaway"]["hooks"] == SPEC_NAMES


def test_throwaway_plugin_is_called_by_core(throwaway: ThrowawayPlugin) -> None:
    assert modality_for_inputs(["throwaway_values", "extra"]) == THROWAWAY
    assert ort_model_class("throwaway-task") is ThrowawayORTModel
    assert {"register_modalities", "ort_model_class"} <= set(throwaway.calls)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("text,core", ["core", "text"]), (" text , core ", ["core", "text"]), ("text", ["core", "text"]), ("", ["core"])],
)
def test_load_plugins_env_restricts_which_plugins_load(monkeypatch, value: str, expected: list[str]) -> None:
    """Installed plugins load only when named; core's built-in rules always load."""
    monkeypatch.setenv(LOAD_PLUGINS_ENV, value)
    get_plugin_manager.cache_clear()
    try:
        assert [row.plugin for row in list_plugins()] == expected
    finally:
        get_plugin_manager.cache_clear()


def test_without_load_plugins_env_every_installed_plugin_loads(all_plugins) -> None:
    installed = sorted(ep.name for ep in entry_points(group="modelexport"))
    assert {"core", "text"} <= set(installed)
    assert [row.plugin for row in list_plugins()] == installed


def test_plugins_list_json_in_a_subprocess_honours_the_env() -> None:
    run = run_modelexport("plugins", "list", "--json", env=cli_env(MODELEXPORT_LOAD_PLUGINS="text,core"))
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert [row["plugin"] for row in rows] == ["core", "text"]
    columns = {"plugin", "distribution", "version", "modality", "tasks", "targets", "hooks"}
    assert all(set(row) == columns for row in rows)
    core, text = rows
    assert (core["distribution"], core["version"]) == ("modelexport-core", version("modelexport-core"))
    assert (text["distribution"], text["version"]) == ("modelexport-text", version("modelexport-text"))
    assert text["modality"] == ["text"]
    assert set(TEXT_TASKS) <= set(text["tasks"])
    assert {"register_modalities", "detect_shapes", "copy_configs"} <= set(text["hooks"])
    assert "route_processor" in core["hooks"]
    assert core["targets"] == ["cpu"] and text["targets"] == []


def test_plugins_list_table_shows_every_column() -> None:
    run = run_modelexport("plugins", "list", env=cli_env(MODELEXPORT_LOAD_PLUGINS="text,core", COLUMNS="250"))
    assert run.returncode == 0, run.stderr
    header = next(line for line in run.stdout.splitlines() if "plugin" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == [
        "plugin",
        "distribution",
        "version",
        "modality",
        "tasks",
        "targets",
        "hooks",
    ]
    text_row = next(line for line in run.stdout.splitlines() if line.startswith("│ text "))
    cells = [cell.strip() for cell in text_row.strip("│ ").split("│")]
    assert cells[:4] == ["text", "modelexport-text", version("modelexport-text"), "text"]
    assert cells[4] in TEXT_TASKS and cells[5] == "-" and cells[6] in SPEC_NAMES  # first of one-per-line lists
    assert all(task in run.stdout for task in TEXT_TASKS)
    assert "route_processor" in run.stdout


def test_plugins_list_table_cuts_nothing_short_in_80_columns() -> None:
    run = run_modelexport("plugins", "list", env=cli_env(MODELEXPORT_LOAD_PLUGINS="text,core", COLUMNS="80"))
    assert run.returncode == 0, run.stderr
    assert "…" not in run.stdout
    assert max(len(line) for line in run.stdout.splitlines()) <= 80


# ---- one test per hook spec, through the hook relay, with the real plugins and the throw-away one ----


def test_hook_register_modalities(throwaway: ThrowawayPlugin) -> None:
    declared = [m for group in hook().register_modalities() for m in group]
    assert THROWAWAY in declared
    text = next(m for m in declared if m.name == "text")
    assert "input_ids" in text.input_names and set(TEXT_TASKS) <= set(text.tasks)
    assert modality_for_inputs(["input_ids", "attention_mask", "token_type_ids"]).name == "text"


def test_hook_register_targets(throwaway: ThrowawayPlugin) -> None:
    from modelexport_core.errors import ModelExportError
    from modelexport_core.targets.registry import get_target, targets

    declared = [t.name for group in hook().register_targets() for t in group]
    assert {"cpu", "qnn-htp", "throwaway-target"} <= set(declared)
    assert targets()["cpu"].is_available()
    with pytest.raises(
        ModelExportError,
        match="Target throwaway-target is not available on this machine: pip install throwaway-runtime",
    ):
        get_target("throwaway-target")
    with pytest.raises(ModelExportError, match="Unknown target 'npu': choose one of cpu, qnn-htp, throwaway-target"):
        get_target("npu")
    assert "register_targets" in throwaway.calls


def test_hook_detect_shapes(throwaway: ThrowawayPlugin) -> None:
    relay = hook().detect_shapes
    fixed = {"input_ids": [2, 16], "attention_mask": [2, 16]}
    assert relay(modality="text", input_shapes=fixed) == {"batch_size": 2, "sequence_length": 16}
    dynamic = {"input_ids": [None, None], "attention_mask": [None, None]}
    assert relay(modality="text", input_shapes=dynamic) == {"batch_size": None, "sequence_length": None}
    assert relay(modality="throwaway", input_shapes={"throwaway_values": [4, 9]}) == {
        "batch_size": 4,
        "throwaway_length": 9,
    }
    assert relay(modality="no-such-modality", input_shapes=fixed) is None
    assert throwaway.calls == ["detect_shapes"]


def test_hook_default_shapes(throwaway: ThrowawayPlugin, tmp_path: Path) -> None:
    relay = hook().default_shapes
    assert relay(modality="text", package_dir=tmp_path) == {"sequence_length": 128}
    assert relay(modality="throwaway", package_dir=tmp_path) == {"throwaway_length": 7}
    assert relay(modality="no-such-modality", package_dir=tmp_path) is None


def test_hook_copy_configs(throwaway: ThrowawayPlugin, tiny_tokenizer_dir: Path, tokenizer, tmp_path: Path):
    from transformers import AutoTokenizer

    text_out, throwaway_out = tmp_path / "text", tmp_path / "throwaway"
    text_out.mkdir()
    throwaway_out.mkdir()
    source = str(tiny_tokenizer_dir)
    written = hook().copy_configs(modality="text", source=source, out_dir=text_out, hub_kwargs={})
    paths = [Path(name) for group in written for name in group]
    assert all(path.parent in (Path("."), text_out) for path in paths)  # written only inside out_dir
    assert {"tokenizer.json", "tokenizer_config.json"} <= {p.name for p in text_out.iterdir()}
    assert {p.name for p in text_out.iterdir()} <= {path.name for path in paths}  # and it names what it wrote
    copied = AutoTokenizer.from_pretrained(text_out)
    assert copied("hello world")["input_ids"] == tokenizer("hello world")["input_ids"]
    written = hook().copy_configs(modality="throwaway", source="src", out_dir=throwaway_out, hub_kwargs={})
    assert written == [["throwaway_config.json"]]
    assert [p.name for p in throwaway_out.iterdir()] == ["throwaway_config.json"]


def test_hook_wrap_processor(throwaway: ThrowawayPlugin, tokenizer) -> None:
    relay = hook().wrap_processor
    shapes = {"batch_size": 2, "sequence_length": 16}
    wrapped_text = relay(modality="text", processor=tokenizer, shapes=shapes)
    assert isinstance(wrapped_text, FixedShapeProcessor)
    assert wrapped_text.wrapped is tokenizer
    assert (wrapped_text.shapes["batch_size"], wrapped_text.shapes["sequence_length"]) == (2, 16)
    processor = ThrowawayProcessor()
    wrapped = relay(modality="throwaway", processor=processor, shapes={"batch_size": 3})
    assert isinstance(wrapped, FixedShapeProcessor) and wrapped.wrapped is processor
    assert relay(modality="text", processor=processor, shapes=shapes) is None  # not a tokenizer
    assert relay(modality="no-such-modality", processor=tokenizer, shapes=shapes) is None


def test_hook_load_processor(throwaway: ThrowawayPlugin, tiny_tokenizer_dir: Path) -> None:
    relay = hook().load_processor
    loaded = relay(modality="text", processor_dir=str(tiny_tokenizer_dir))
    assert isinstance(loaded, PreTrainedTokenizerBase)
    assert loaded.get_vocab() == relay(modality="text", processor_dir=str(tiny_tokenizer_dir)).get_vocab()
    assert isinstance(relay(modality="throwaway", processor_dir="somewhere"), ThrowawayProcessor)
    assert relay(modality="no-such-modality", processor_dir=str(tiny_tokenizer_dir)) is None


def test_hook_route_processor(throwaway: ThrowawayPlugin, tokenizer) -> None:
    from transformers import ViTImageProcessor

    relay = hook().route_processor
    assert relay(pipeline_class=TextClassificationPipeline, processor=tokenizer) == {"tokenizer": tokenizer}
    wrapper = FixedShapeProcessor(tokenizer, {"batch_size": 1, "sequence_length": 8})
    routed = relay(pipeline_class=TextClassificationPipeline, processor=wrapper)
    assert list(routed) == ["tokenizer"] and routed["tokenizer"] is wrapper  # routed by what it wraps
    image_processor = ViTImageProcessor()
    assert relay(pipeline_class=ImageClassificationPipeline, processor=image_processor) == {
        "image_processor": image_processor
    }
    ours = ThrowawayProcessor()
    assert relay(pipeline_class=ThrowawayPipeline, processor=ours) == {"throwaway_processor": ours}
    assert relay(pipeline_class=TextClassificationPipeline, processor=object()) is None


def test_hook_pipeline_class(throwaway: ThrowawayPlugin) -> None:
    from transformers.pipelines import check_task

    relay = hook().pipeline_class
    assert relay(task="throwaway-task", modality="throwaway") is ThrowawayPipeline
    for task in TEXT_TASKS:
        offered = relay(task=task, modality="text")
        stock = check_task(task)[1]["impl"]
        assert offered is None or issubclass(offered, stock), task  # a plugin's class still is the stock one
    assert issubclass(relay(task="feature-extraction", modality="text"), FeatureExtractionPipeline)
    assert relay(task="text-classification", modality="no-such-modality") is None


def test_hook_onnx_config(throwaway: ThrowawayPlugin) -> None:
    from transformers import BertConfig, PretrainedConfig

    from modelexport_core.exporter.tasks import onnx_config_for

    custom = onnx_config_for(PretrainedConfig(model_type="throwaway"), "sentiment-analysis")
    assert isinstance(custom, ThrowawayOnnxConfig) and custom.task == "text-classification"  # the export task
    assert "onnx_config" in throwaway.calls
    stock = onnx_config_for(BertConfig(), "text-classification")  # no plugin claims BERT: Optimum's config
    assert type(stock).__name__ == "BertOnnxConfig" and list(stock.inputs)[0] == "input_ids"


def test_hook_ort_model_class(throwaway: ThrowawayPlugin) -> None:
    from optimum.onnxruntime import ORTModelForSequenceClassification

    assert hook().ort_model_class(task="throwaway-task") is ThrowawayORTModel
    assert hook().ort_model_class(task="text-classification") is None  # Optimum has one: no plugin overrides
    assert ort_model_class("throwaway-task") is ThrowawayORTModel
    assert ort_model_class("text-classification") is ORTModelForSequenceClassification


def test_hook_sample_inputs(throwaway: ThrowawayPlugin) -> None:
    relay = hook().sample_inputs
    samples = relay(modality="text", sequence_length=16)
    assert samples and all(isinstance(text, str) and text for texts in samples.values() for text in texts)
    assert all(len(texts) >= 1 for texts in samples.values())
    assert relay(modality="throwaway", sequence_length=16) == {"short": ["x y z"]}
    assert relay(modality="no-such-modality", sequence_length=16) is None


def test_hook_benchmark_kwargs(throwaway: ThrowawayPlugin) -> None:
    relay = hook().benchmark_kwargs
    assert relay(task="throwaway-task") == {"pipeline": {"throwaway_option": 1}, "processor": {}}
    assert relay(task="text-classification") is None  # text and vision tasks run on their inputs alone
    zero_shot = relay(task="zero-shot-image-classification")
    labels = zero_shot["pipeline"]["candidate_labels"]
    assert [f"This is a photo of {label}." for label in labels] == zero_shot["processor"]["text"]
    assert throwaway.calls == ["benchmark_kwargs"]


def test_hook_benchmark_corpus(throwaway: ThrowawayPlugin) -> None:
    """The text plugin's corpus: 320 distinct real English sentences of varied length, the same on every call."""
    relay = hook().benchmark_corpus
    corpus = relay(modality="text")
    assert len(corpus) == len(set(corpus)) == 320 and corpus == relay(modality="text")
    words = sorted(len(sentence.split()) for sentence in corpus)
    assert words[0] >= 4 and 8 <= words[len(words) // 2] <= 14 and words[-1] >= 30
    assert all(sentence[0].isupper() and sentence.endswith(".") and "_" not in sentence for sentence in corpus)
    assert relay(modality="throwaway") == ["x", "x y z"]
    assert relay(modality="no-such-modality") is None
