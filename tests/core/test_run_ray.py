"""`modelexport run --engine ray`: Ray Data actors give the local engine's output, survive an actor killed
mid-run, and spread over the nodes of a (two-node, local) cluster."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import ray
import ray.cloudpickle
from ray.cluster_utils import Cluster

from modelexport_core.plugins.manager import get_modality
from modelexport_core.run.engines import RayOptions, ray_batches
from modelexport_core.run.predictor import Predictor

from conftest import run_modelexport

TASK = "text-classification"
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module


class KilledOnce(Predictor):
    """A Predictor whose actor process is SIGKILLed in its first batch (once per run: `marker` remembers)."""

    def __init__(self, marker: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.marker = Path(marker)

    def __call__(self, batch):
        if not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(batch)


class NodeRecording(Predictor):
    """A Predictor adding the id of the node that answered each row, taking as long per batch as a real model
    would (the tiny one is done before a second actor has started)."""

    def predict_rows(self, rows):
        time.sleep(0.5)
        node = ray.get_runtime_context().get_node_id()
        return [{**row, "node": node} for row in super().predict_rows(rows)]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [{"id": i, "text": text} for i, text in enumerate(get_modality("text").corpus())]


@pytest.fixture(scope="module")
def local_output(text_package, rows, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The local engine's output rows over the corpus."""
    directory = tmp_path_factory.mktemp("local")
    source = directory / "in.jsonl"
    source.write_text("".join(json.dumps({"text": row["text"]}) + "\n" for row in rows))
    run = run_modelexport("run", text_package(TASK, 2), source, directory / "out.jsonl")
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in (directory / "out.jsonl").read_text().splitlines()]


def _predictor(package: Path) -> dict:
    return {"package": str(package), "column": "text"}


def _by_id(batches) -> dict:
    rows = [row for batch in batches for row in batch]
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), "a row came out twice"
    return {row["id"]: row for row in rows}


def _same_answers(ours: dict, local: list[dict]) -> None:
    """The same labels, and scores within float32 rounding: Ray's blocks batch the rows otherwise than the local
    engine, so a row may run on another bucket, whose sums round differently."""
    assert sorted(ours) == [row["id"] for row in local]
    for row in local:
        assert ours[row["id"]]["label"] == row["label"]
        assert abs(ours[row["id"]]["score"] - row["score"]) <= 1e-5


def test_the_cli_on_ray_writes_the_local_engines_output(text_package, local_output, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": row["text"]}) + "\n" for row in local_output))
    run = run_modelexport(
        "run", text_package(TASK, 2), source, tmp_path / "out.jsonl", "--engine", "ray", "--actors", "2"
    )
    assert run.returncode == 0, run.stderr
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["id"] for row in written] == [row["id"] for row in local_output]
    _same_answers({row["id"]: row for row in written}, local_output)


def test_an_actor_killed_mid_run_is_restarted(text_package, rows, local_output, tmp_path: Path) -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        predictor = {**_predictor(text_package(TASK, 2)), "marker": str(tmp_path / "killed")}
        ours = _by_id(ray_batches(rows, predictor, 64, RayOptions(actors=1), udf=KilledOnce))
    finally:
        ray.shutdown()
    assert (tmp_path / "killed").exists()  # an actor did die
    _same_answers(ours, local_output)


def test_a_two_node_cluster_shares_the_work(text_package, rows, local_output) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        options = RayOptions(actors=2, cpus_per_actor=1, address=cluster.address)
        ours = _by_id(ray_batches(rows, _predictor(text_package(TASK, 2)), 10, options, udf=NodeRecording))
        nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    finally:
        ray.shutdown()
        cluster.shutdown()
    split = Counter(row["node"] for row in ours.values())
    print(f"rows per node: {sorted(split.values())}")
    assert set(split) == nodes and len(nodes) == 2
    _same_answers(ours, local_output)
