"""Export of a tiny BERT by the CLI and the Python API: a fixed-shape, hierarchy-tagged package Optimum loads."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnx
import pytest

from modelexport_core.package.files import sha256_of
from modelexport_core.package.hierarchy import HIERARCHY_TAG, MODULE_PATH, iter_nodes, node_tags

from conftest import TINY_BERT_NAME, CliExport, run_modelexport

BATCH, SEQUENCE = 2, 16
TEXTS = ["hello world", "the quick brown fox jumps over the lazy dog"]


def _model(out_dir: Path) -> onnx.ModelProto:
    return onnx.load(out_dir / "model.onnx")


def _metadata(out_dir: Path) -> dict:
    return json.loads((out_dir / "export_metadata.json").read_text())


@pytest.fixture(scope="module")
def package(tiny_bert_export: CliExport) -> Path:
    assert tiny_bert_export.run.returncode == 0, tiny_bert_export.run.stderr
    return tiny_bert_export.out_dir


@pytest.fixture(scope="module")
def torch_model(tiny_bert_dir: Path):
    from transformers import BertForSequenceClassification

    return BertForSequenceClassification.from_pretrained(tiny_bert_dir).eval()


@pytest.fixture(scope="module")
def tagged_nodes(package: Path) -> list[dict[str, str]]:
    return [node_tags(node) for node in iter_nodes(_model(package).graph)]


def test_cli_export_exits_0_and_reports_shapes_and_validation(tiny_bert_export: CliExport) -> None:
    run = tiny_bert_export.run
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "input_ids[2, 16]" in run.stdout
    assert "PASS optimum" in run.stdout


def test_cli_export_shows_progress_of_each_long_step(tiny_bert_export: CliExport) -> None:
    progress = [line for line in tiny_bert_export.run.stderr.splitlines() if line.startswith("> ")]
    steps = ["Loading", "Exporting", "Tagging", "Writing config.json", "Validating", "Writing export_metadata"]
    positions = [next(i for i, line in enumerate(progress) if line.startswith(f"> {step}")) for step in steps]
    assert positions == sorted(positions)


def test_every_input_is_batch_by_sequence_and_every_dim_is_fixed(package: Path, tiny_bert_dir: Path) -> None:
    from transformers import AutoConfig

    graph = _model(package).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    assert sorted(i.name for i in inputs) == ["attention_mask", "input_ids", "token_type_ids"]
    for value in inputs:
        assert [d.dim_value for d in value.type.tensor_type.shape.dim] == [BATCH, SEQUENCE], value.name
    for value in [*inputs, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        assert dims and all(d.HasField("dim_value") and not d.dim_param for d in dims), value.name
    assert [o.name for o in graph.output] == ["logits"]
    num_labels = AutoConfig.from_pretrained(tiny_bert_dir).num_labels
    assert [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] == [BATCH, num_labels]


def test_every_node_carries_both_tags(tagged_nodes: list[dict[str, str]]) -> None:
    assert len(tagged_nodes) > 50
    untagged = [tags for tags in tagged_nodes if MODULE_PATH not in tags or HIERARCHY_TAG not in tags]
    assert untagged == []


def test_every_module_path_is_a_named_module(tagged_nodes: list[dict[str, str]], torch_model) -> None:
    modules = dict(torch_model.named_modules())
    assert {tags[MODULE_PATH] for tags in tagged_nodes} <= set(modules)
    # The exporter recorded real scopes: nearly every node comes from a submodule, not the root fallback.
    at_root = sum(tags[MODULE_PATH] == "" for tags in tagged_nodes)
    assert at_root <= 0.05 * len(tagged_nodes)


def test_hierarchy_tag_walks_the_class_path_down_to_the_module(tagged_nodes, torch_model) -> None:
    modules = dict(torch_model.named_modules())
    for tags in tagged_nodes:
        root, *segments = tags[HIERARCHY_TAG].split("/")[1:]
        assert root == type(torch_model).__name__
        path = ""
        for segment in segments:
            local, class_name = segment.split(":")
            path = f"{path}.{local}" if path else local
            assert type(modules[path]).__name__ == class_name, tags[HIERARCHY_TAG]
        assert path == tags[MODULE_PATH]


def test_hierarchy_tags_are_unique_per_module_instance(tagged_nodes) -> None:
    paths_by_tag: dict[str, set[str]] = {}
    for tags in tagged_nodes:
        paths_by_tag.setdefault(tags[HIERARCHY_TAG], set()).add(tags[MODULE_PATH])
    assert all(len(paths) == 1 for paths in paths_by_tag.values())
    by_path = {tags[MODULE_PATH]: tags[HIERARCHY_TAG] for tags in tagged_nodes}
    attention = "bert.encoder.layer.0.attention.self"
    query, key, value = (by_path[f"{attention}.{name}"] for name in ("query", "key", "value"))
    assert len({query, key, value}) == 3
    root = "/BertForSequenceClassification/bert:BertModel/encoder:BertEncoder/layer.0:BertLayer/"
    assert query.startswith(root)
    assert query.endswith("/query:Linear") and key.endswith("/key:Linear") and value.endswith("/value:Linear")
    assert by_path["bert.encoder.layer.1.attention.self.query"] != query


def test_optimum_loads_the_package_with_no_arguments_and_matches_pytorch(package, tiny_bert_dir, torch_model):
    import torch
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    inputs = tokenizer(TEXTS, padding="max_length", max_length=SEQUENCE, truncation=True, return_tensors="pt")
    assert int(inputs["attention_mask"][0].sum()) < SEQUENCE  # real padding is in play
    ort_model = ORTModelForSequenceClassification.from_pretrained(package)
    with torch.no_grad():
        expected = torch_model(**inputs).logits.numpy()
    actual = ort_model(**inputs).logits
    actual = actual.numpy() if hasattr(actual, "numpy") else np.asarray(actual)
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)
    assert not np.allclose(actual[0], actual[1])  # two different texts, two different rows


def test_model_level_metadata_props_describe_the_model(package: Path) -> None:
    props = {p.key: p.value for p in _model(package).metadata_props}
    assert props["modelexport.version"] == version("modelexport-core")
    assert props["modelexport.task"] == "text-classification"
    assert props["modelexport.modality"] == "text"
    assert json.loads(props["modelexport.shapes"]) == {
        name: [BATCH, SEQUENCE] for name in ("input_ids", "attention_mask", "token_type_ids")
    }


def test_export_metadata_records_source_task_versions_and_onnx(package: Path) -> None:
    metadata = _metadata(package)
    model = _model(package)
    assert metadata["schema_version"] == 1
    assert metadata["source_model"] == TINY_BERT_NAME  # the directory's name, never its full path
    assert os.sep not in json.dumps(metadata["source_model"])
    assert (metadata["task"], metadata["modality"]) == ("text-classification", "text")
    for library in ("torch", "transformers", "optimum", "onnx", "onnxruntime", "modelexport-core"):
        assert metadata["versions"][library] == version(library), library
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert metadata["onnx"]["opset"] == opset
    assert metadata["onnx"]["ir_version"] == model.ir_version


def test_export_metadata_records_inputs_and_outputs(package: Path, tiny_bert_dir: Path) -> None:
    from transformers import AutoConfig

    num_labels = AutoConfig.from_pretrained(tiny_bert_dir).num_labels
    metadata = _metadata(package)
    assert metadata["inputs"] == [
        {"name": name, "shape": [BATCH, SEQUENCE], "dtype": "int64"}
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    assert metadata["outputs"] == [{"name": "logits", "shape": [BATCH, num_labels], "dtype": "float32"}]


def _flatten(tree: dict) -> dict[str, int]:
    own = {tree["path"]: tree["nodes"]} if tree["nodes"] else {}
    for child in tree["children"]:
        own.update(_flatten(child))
    return own


def _assert_totals_add_up(tree: dict) -> None:
    assert tree["total"] == tree["nodes"] + sum(child["total"] for child in tree["children"]), tree["path"]
    for child in tree["children"]:
        _assert_totals_add_up(child)


def test_export_metadata_hierarchy_summary_counts_the_graph(package: Path, tagged_nodes, torch_model) -> None:
    hierarchy = _metadata(package)["hierarchy"]
    assert hierarchy["modules"] == len(dict(torch_model.named_modules()))
    assert hierarchy["nodes"] == hierarchy["tagged_nodes"] == len(tagged_nodes)
    assert hierarchy["root_fallback_nodes"] == sum(tags[MODULE_PATH] == "" for tags in tagged_nodes)
    tree = hierarchy["tree"]
    root = ("", "BertForSequenceClassification", len(tagged_nodes))
    assert (tree["path"], tree["class"], tree["total"]) == root
    _assert_totals_add_up(tree)
    counted: dict[str, int] = {}
    for tags in tagged_nodes:
        counted[tags[MODULE_PATH]] = counted.get(tags[MODULE_PATH], 0) + 1
    assert _flatten(tree) == counted


def test_export_metadata_lists_every_file_with_its_sha256(package: Path) -> None:
    files = _metadata(package)["files"]
    on_disk = sorted(p.name for p in package.iterdir() if p.name != "export_metadata.json")
    assert sorted(entry["path"] for entry in files) == on_disk
    for entry in files:
        path = package / entry["path"]
        assert entry["size"] == path.stat().st_size
        assert entry["sha256"] == sha256_of(path)


def test_export_metadata_records_timings(package: Path) -> None:
    timings = _metadata(package)["timings"]
    assert {"load", "export", "tag", "copy"} <= set(timings)
    assert all(isinstance(seconds, float) and seconds >= 0 for seconds in timings.values())
    assert timings["export"] > 0


def test_package_holds_config_and_tokenizer_files_that_load(package: Path, tiny_bert_dir: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    names = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
    for name in names:
        assert (package / name).is_file(), name
    config = AutoConfig.from_pretrained(package)
    source_config = AutoConfig.from_pretrained(tiny_bert_dir)
    assert (config.model_type, config.num_labels, config.hidden_size) == ("bert", source_config.num_labels, 32)
    assert (
        AutoTokenizer.from_pretrained(package)(TEXTS)["input_ids"]
        == AutoTokenizer.from_pretrained(tiny_bert_dir)(TEXTS)["input_ids"]
    )


def test_package_directory_is_readable_by_others_as_umask_allows(package: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(package.stat().st_mode) == 0o777 & ~mask


def test_no_temporary_directory_is_left_beside_the_package(package: Path) -> None:
    assert [p.name for p in package.parent.iterdir()] == [package.name]


def test_validate_exits_0_on_the_package(package: Path) -> None:
    run = run_modelexport("validate", package)
    assert run.returncode == 0, run.stdout + run.stderr
    for check in ("files", "onnx_checker", "static_shapes", "config", "optimum"):
        assert re.search(rf"^PASS {check}: ", run.stdout, re.MULTILINE), check
    assert "FAIL" not in run.stdout


def test_validate_exits_1_when_a_file_no_longer_matches_its_sha256(package: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(package, tmp_path / "copy")
    with (copy / "tokenizer_config.json").open("a") as handle:
        handle.write("\n")  # still valid JSON; only the recorded sha256 tells
    run = run_modelexport("validate", copy)
    assert run.returncode == 1, run.stdout + run.stderr
    failure = r"^FAIL files: tokenizer_config.json does not match its recorded sha256"
    assert re.search(failure, run.stdout, re.MULTILINE)
    assert "Traceback" not in run.stderr


def test_inspect_prints_the_module_tree_with_node_counts(package: Path) -> None:
    run = run_modelexport("inspect", package)
    assert run.returncode == 0, run.stderr
    total = _metadata(package)["hierarchy"]["nodes"]
    assert re.search(rf"\(root\) BertForSequenceClassification\s+{total} nodes", run.stdout)
    for name, class_name in [("query", "Linear"), ("embeddings", "BertEmbeddings"), ("classifier", "Linear")]:
        assert re.search(rf"{name} {class_name}\s+[1-9]\d* nodes", run.stdout), name
    assert run.stdout.count("query Linear") == 2  # one per layer


def test_inspect_json_prints_the_recorded_hierarchy_and_the_storage(package: Path) -> None:
    run = run_modelexport("inspect", package, "--json")
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    storage = printed.pop("storage")
    assert printed == _metadata(package)["hierarchy"]
    on_disk = {p.name: p.stat().st_size for p in package.iterdir()}
    assert storage["files"] == on_disk and storage["total_bytes"] == sum(on_disk.values())


def test_inspect_a_lone_model_onnx_recounts_from_the_node_tags(package: Path, tmp_path: Path) -> None:
    lone = shutil.copy(package / "model.onnx", tmp_path / "model.onnx")
    run = run_modelexport("inspect", lone, "--json")
    assert run.returncode == 0, run.stderr
    recounted = json.loads(run.stdout)
    recorded = _metadata(package)["hierarchy"]
    assert recounted["nodes"] == recorded["nodes"]
    assert recounted["tree"]["total"] == recorded["tree"]["total"]
    assert _flatten(recounted["tree"]) == _flatten(recorded["tree"])


def test_task_is_inferred_and_printed_when_omitted(tiny_bert_forced_export: CliExport) -> None:
    run = tiny_bert_forced_export.run
    assert run.returncode == 0, run.stderr
    assert "> Inferred task: text-classification" in run.stderr.splitlines()
    assert _metadata(tiny_bert_forced_export.out_dir)["task"] == "text-classification"


def test_python_api_exports_with_the_same_options(tiny_bert_dir: Path, package: Path, tmp_path: Path) -> None:
    import modelexport_core

    messages: list[str] = []
    out_dir = tmp_path / "api" / "package"
    metadata = modelexport_core.export(
        tiny_bert_dir,
        out_dir,
        task="text-classification",
        batch_size=BATCH,
        sequence_length=SEQUENCE,
        opset=18,
        progress=messages.append,
    )
    assert metadata["validation"]["ok"]
    assert metadata["shapes"] == _metadata(package)["shapes"]
    assert any(message.startswith("Exporting") for message in messages)
    written = _metadata(out_dir)
    assert {k: written[k] for k in ("source_model", "task", "inputs", "outputs")} == {
        k: metadata[k] for k in ("source_model", "task", "inputs", "outputs")
    }
    assert written["hierarchy"] == _metadata(package)["hierarchy"]
    cli_files = {entry["path"] for entry in _metadata(package)["files"]}
    assert {entry["path"] for entry in written["files"]} == cli_files


def test_onnxruntime_fuses_each_layers_gelu(package: Path, tmp_path: Path) -> None:
    """The exported GELU is in the order onnxruntime's GeluFusion matches: one Gelu per layer on the CPU."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(str(package / "model.onnx"), options, providers=["CPUExecutionProvider"])
    ops = [node.op_type for node in onnx.load(tmp_path / "optimized.onnx").graph.node]
    assert "Erf" not in ops and ops.count("Gelu") + ops.count("BiasGelu") == 2  # the tiny BERT's two layers
