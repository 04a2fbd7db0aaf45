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

from modelexport_core import Modality, ModelExportError, hookimpl
from modelexport_core.cli import app
from modelexport_core.plugins import hookspecs
from modelexport_core.plugins.manager import (
    LOAD_PLUGINS_ENV,
    PluginWarning,
    get_modality,
    get_plugin_manager,
    hook,
    list_plugins,
    modalities,
    modality_for_inputs,
    targets,
)
from modelexport_core.serve.fixed import FixedShapeProcessor
from modelexport_core.serve.models import ort_model_class
from modelexport_core.targets.target import ExecutionTarget
from modelexport_text import TextModality

from conftest import cli_env, run_modelexport

SPEC_NAMES = sorted(name for name, obj in vars(hookspecs).items() if hasattr(obj, "modelexport_spec"))
MODALITY_METHODS = sorted(name for name, obj in vars(Modality).items() if callable(obj) and not name.startswith("_"))
TEXT_TASKS = ["feature-extraction", "fill-mask", "question-answering", "text-classification", "token-classification"]


class ThrowawayProcessor:
    """A processor of the throw-away modality: none of transformers' processor base classes."""

    def __init__(self, source: str = "") -> None:
        self.source = source


class ThrowawayPipeline(TextClassificationPipeline):
    """The pipeline class the throw-away modality offers for its task."""


class ThrowawayORTModel:
    """The ORTModel class the throw-away plugin names for its task."""


class ThrowawayOnnxConfig:
    """The OnnxConfig the throw-away plugin supplies for its model type."""

    def __init__(self, config: Any, task: str) -> None:
        self.config, self.task = config, task


class ThrowawayModality(Modality):
    """A modality of `throwaway_values` [batch, throwaway_length]."""

    name = "throwaway"
    tasks = ("throwaway-task",)
    input_names = ("throwaway_values",)
    dim_names = ("batch_size", "throwaway_length")
    length_dim = "throwaway_length"

    def name_dims(self, input_shapes: Any) -> dict[str, int | None]:
        batch_size, length = input_shapes["throwaway_values"]
        return {"batch_size": batch_size, "throwaway_length": length}

    def default_dims(self, package_dir: Path) -> dict[str, int]:
        return {"throwaway_length": 7}

    def load_processor(self, directory: str, trust_remote_code: bool = False) -> Any:
        return ThrowawayProcessor(directory)

    def wrap_processor(self, processor: Any, dims: Any) -> Any | None:
        return FixedShapeProcessor(processor, dict(dims)) if isinstance(processor, ThrowawayProcessor) else None

    def pipeline_class(self, task: str) -> type | None:
        return ThrowawayPipeline if task == "throwaway-task" else None


THROWAWAY_TARGET = ExecutionTarget(
    name="throwaway-target",
    provider="CPUExecutionProvider",
    is_available=lambda: False,
    build_session=lambda model, options: None,
    install_hint="pip install throwaway-runtime",
)


class ThrowawayPlugin:
    """Implements every hook: registers the throw-away modality and target, and records each call it answers."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.modality = ThrowawayModality()

    @hookimpl
    def register_modalities(self, register: Any) -> None:
        self.calls.append("register_modalities")
        register(self.modality)

    @hookimpl
    def register_targets(self, register: Any) -> None:
        self.calls.append("register_targets")
        register(THROWAWAY_TARGET)

    @hookimpl
    def route_processor(self, pipeline_class: type, processor: Any) -> dict[str, Any] | None:
        if not isinstance(getattr(processor, "wrapped", processor), ThrowawayProcessor):
            return None
        self.calls.append("route_processor")
        return {"throwaway_processor": processor}

    @hookimpl
    def onnx_config(self, config: Any, task: str) -> Any | None:
        if getattr(config, "model_type", None) != "throwaway":
            return None
        self.calls.append("onnx_config")
        return ThrowawayOnnxConfig(config, task)

    @hookimpl
    def ort_model_class(self, task: str) -> type | None:
        if task != "throwaway-task":
            return None
        self.calls.append("ort_model_class")
        return ThrowawayORTModel


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
    assert len(SPEC_NAMES) >= 5
    docs = {name: (inspect.getdoc(getattr(hookspecs, name)) or "").strip() for name in SPEC_NAMES}
    undocumented = [name for name, doc in docs.items() if not doc]
    assert undocumented == []
    tested = {name.removeprefix("test_hook_") for name in globals() if name.startswith("test_hook_")}
    assert tested == set(SPEC_NAMES)


def test_every_modality_method_has_a_docstring_and_a_test_named_after_it() -> None:
    assert {"name_dims", "wrap_processor", "input_lengths", "corpus"} <= set(MODALITY_METHODS)
    undocumented = [name for name in MODALITY_METHODS if not inspect.getdoc(getattr(Modality, name))]
    assert undocumented == []
    tested = {name.removeprefix("test_modality_") for name in globals() if name.startswith("test_modality_")}
    assert tested == set(MODALITY_METHODS)


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
    assert modality_for_inputs(["throwaway_values", "extra"]) is throwaway.modality
    assert get_modality("throwaway") is throwaway.modality
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
    assert text["hooks"] == ["register_modalities"]
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
    declared = modalities()
    assert declared["throwaway"] is throwaway.modality
    text = declared["text"]
    assert "input_ids" in text.input_names and set(TEXT_TASKS) <= set(text.tasks)
    assert modality_for_inputs(["input_ids", "attention_mask", "token_type_ids"]) is text
    assert modality_for_inputs(["input_ids", "bbox", "attention_mask"]).name == "document"  # the most specific


def test_a_plugin_registering_what_is_not_a_modality_is_skipped_with_a_warning(all_plugins) -> None:
    class Wrong:
        @hookimpl
        def register_modalities(self, register: Any) -> None:
            register("text")

    class Raising:
        @hookimpl
        def register_modalities(self, register: Any) -> None:
            raise RuntimeError("a bug in a plugin")

    all_plugins.register(Wrong(), name="wrong")
    all_plugins.register(Raising(), name="raising")
    try:
        with pytest.warns(PluginWarning) as warned:
            found = modalities()
        assert sorted(str(w.message) for w in warned) == [
            "modelexport plugin raising is skipped: its register_modalities raised RuntimeError: a bug in a plugin",
            "modelexport plugin wrong is skipped: it registered a str through register_modalities, not a Modality",
        ]
        assert {"text", "vision", "audio"} <= set(found)  # the other plugins keep working
    finally:
        all_plugins.unregister(name="wrong")
        all_plugins.unregister(name="raising")


def test_hook_register_targets(throwaway: ThrowawayPlugin) -> None:
    from modelexport_core.targets.registry import get_target

    assert {"cpu", "qnn-htp", "throwaway-target"} <= set(targets())
    assert targets()["cpu"].is_available()
    with pytest.raises(
        ModelExportError,
        match="Target throwaway-target is not available on this machine: pip install throwaway-runtime",
    ):
        get_target("throwaway-target")
    with pytest.raises(ModelExportError, match="Unknown target 'npu': choose one of cpu, qnn-htp, throwaway-target"):
        get_target("npu")
    assert "register_targets" in throwaway.calls


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


def test_hook_onnx_config(throwaway: ThrowawayPlugin) -> None:
    from transformers import BertConfig, PretrainedConfig

    from modelexport_core.exporter.tasks import onnx_config_for

    custom = onnx_config_for(PretrainedConfig(model_type="throwaway"), "sentiment-analysis")
    assert isinstance(custom, ThrowawayOnnxConfig) and custom.task == "text-classification"  # the export task
    assert "onnx_config" in throwaway.calls
    stock = onnx_config_for(BertConfig(), "text-classification")  # no plugin claims BERT: Optimum's config
    assert type(stock).__name__ == "BertOnnxConfig" and next(iter(stock.inputs)) == "input_ids"


def test_hook_ort_model_class(throwaway: ThrowawayPlugin) -> None:
    from optimum.onnxruntime import ORTModelForSequenceClassification

    assert hook().ort_model_class(task="throwaway-task") is ThrowawayORTModel
    assert hook().ort_model_class(task="text-classification") is None  # Optimum has one: no plugin overrides
    assert ort_model_class("throwaway-task") is ThrowawayORTModel
    assert ort_model_class("text-classification") is ORTModelForSequenceClassification


# ---- one test per Modality method, on the text modality (the other modalities are tested in their files) ----


@pytest.fixture(scope="module")
def text() -> Modality:
    return TextModality()


def test_modality_name_dims(text: Modality, throwaway: ThrowawayPlugin) -> None:
    fixed = {"input_ids": [2, 16], "attention_mask": [2, 16]}
    assert text.name_dims(fixed) == {"batch_size": 2, "sequence_length": 16}
    assert text.name_dims({"input_ids": [None, None]}) == {"batch_size": None, "sequence_length": None}
    assert throwaway.modality.name_dims({"throwaway_values": [4, 9]}) == {"batch_size": 4, "throwaway_length": 9}
    with pytest.raises(NotImplementedError, match="Modality must name the dims of its inputs"):
        Modality().name_dims(fixed)


def test_modality_default_dims(text: Modality, tmp_path: Path) -> None:
    assert text.default_dims(tmp_path) == {"sequence_length": 128}
    assert Modality().default_dims(tmp_path) == {}


def test_modality_fit_dims(text: Modality) -> None:
    from transformers import BertConfig

    config = BertConfig(max_position_embeddings=64)
    assert text.fit_dims({"batch_size": 1, "sequence_length": 128}, config, set()) == {
        "batch_size": 1,
        "sequence_length": 64,
    }  # a default is capped
    with pytest.raises(ModelExportError, match="--sequence-length 128 exceeds the model's max_position_embeddings"):
        text.fit_dims({"sequence_length": 128}, config, {"sequence_length"})


def test_modality_save_preprocessor(text: Modality, tiny_tokenizer_dir: Path, tokenizer, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    text.save_preprocessor(str(tiny_tokenizer_dir), tmp_path, {})
    assert {"tokenizer.json", "tokenizer_config.json"} <= {p.name for p in tmp_path.iterdir()}
    copied = AutoTokenizer.from_pretrained(tmp_path)
    assert copied("hello world")["input_ids"] == tokenizer("hello world")["input_ids"]
    with pytest.raises(ModelExportError, match="has no usable tokenizer files"):
        text.save_preprocessor(str(tmp_path / "missing"), tmp_path / "out", {})


def test_modality_load_processor(text: Modality, tiny_tokenizer_dir: Path) -> None:
    loaded = text.load_processor(str(tiny_tokenizer_dir))
    assert isinstance(loaded, PreTrainedTokenizerBase)
    with pytest.raises(NotImplementedError):
        Modality().load_processor(str(tiny_tokenizer_dir))


def test_modality_wrap_processor(text: Modality, tokenizer, throwaway: ThrowawayPlugin) -> None:
    wrapped = text.wrap_processor(tokenizer, {"batch_size": 2, "sequence_length": 16})
    assert isinstance(wrapped, FixedShapeProcessor) and wrapped.wrapped is tokenizer
    assert (wrapped.shapes["batch_size"], wrapped.shapes["sequence_length"]) == (2, 16)
    assert text.wrap_processor(ThrowawayProcessor(), {"batch_size": 2, "sequence_length": 16}) is None
    processor = ThrowawayProcessor()
    assert throwaway.modality.wrap_processor(processor, {"batch_size": 3}).wrapped is processor


def test_modality_pipeline_class(text: Modality, throwaway: ThrowawayPlugin) -> None:
    from transformers.pipelines import check_task

    for task in TEXT_TASKS:
        offered = text.pipeline_class(task)
        assert offered is None or issubclass(offered, check_task(task)[1]["impl"]), task  # still the stock class
    assert issubclass(text.pipeline_class("feature-extraction"), FeatureExtractionPipeline)
    assert throwaway.modality.pipeline_class("throwaway-task") is ThrowawayPipeline


def test_modality_input_lengths(text: Modality, tokenizer) -> None:
    assert text.input_lengths(["hello", "hello world"], tokenizer) == [3, 4]  # [CLS] ... [SEP]
    assert text.input_lengths([{"question": "q", "context": "c"}], tokenizer) is None
    assert Modality().input_lengths(["hello"], tokenizer) is None


def test_modality_sample_inputs(text: Modality) -> None:
    samples = text.sample_inputs({"batch_size": 1, "sequence_length": 16})
    assert set(samples) == {"short", "full"}
    assert all(isinstance(item, str) and item for items in samples.values() for item in items)
    assert Modality().sample_inputs({}) == {}


def test_modality_benchmark_kwargs(text: Modality) -> None:
    assert text.benchmark_kwargs("text-classification") == {}  # text tasks run on their inputs alone
    zero_shot = modalities()["multimodal"].benchmark_kwargs("zero-shot-image-classification")
    labels = zero_shot["pipeline"]["candidate_labels"]
    assert [f"This is a photo of {label}." for label in labels] == zero_shot["processor"]["text"]


def test_modality_corpus(text: Modality) -> None:
    """The text corpus: 320 distinct real English sentences of varied length, the same on every call."""
    corpus = text.corpus()
    assert len(corpus) == len(set(corpus)) == 320 and corpus == text.corpus()
    words = sorted(len(sentence.split()) for sentence in corpus)
    assert words[0] >= 4 and 8 <= words[len(words) // 2] <= 14 and words[-1] >= 30
    assert Modality().corpus() == []


def test_modality_read_input(text: Modality, tmp_path: Path) -> None:
    from PIL import Image

    assert text.read_input("hello world") == "hello world"
    vision = modalities()["vision"]
    with pytest.raises(ModelExportError, match=r"^Image file not found: "):
        vision.read_input(str(tmp_path / "missing.png"))
    Image.new("RGB", (8, 6)).save(tmp_path / "photo.png")
    assert vision.read_input(str(tmp_path / "photo.png")).size == (8, 6)
