"""Serving machinery that names no modality: the fixed-batch adapter, shape buckets, length-sorted calls."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from modelexport_core.serve.adapter import FixedBatchModel
from modelexport_core.serve.buckets import BucketedModel, Buckets
from modelexport_core.serve.sorting import sorted_by_length


class _CountingModel:
    """A stand-in for an ORTModel fixed at batch 4 that records the batch of every call."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.config = "the wrapped model's config"

    def __call__(self, **inputs: torch.Tensor) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        rows = inputs["input_ids"].shape[0]
        assert rows == 4, f"the fixed-batch model got {rows} rows"
        self.calls.append(rows)
        return SequenceClassifierOutput(logits=inputs["input_ids"][:, :2].float() * 10)


@pytest.mark.parametrize("count", [1, 3, 4, 5, 23])
def test_adapter_pads_each_chunk_and_returns_only_real_rows(count: int) -> None:
    model = _CountingModel()
    adapter = FixedBatchModel(model, batch_size=4)
    ids = torch.arange(count * 3).reshape(count, 3)
    logits = adapter(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=None).logits
    assert torch.equal(logits, ids[:, :2].float() * 10)
    assert len(model.calls) == -(-count // 4)
    assert adapter.config == "the wrapped model's config"


def _signature(length: int) -> dict[str, list[dict[str, Any]]]:
    return {
        "inputs": [{"name": "values", "shape": [2, length]}, {"name": "mask", "shape": [2, length]}],
        "outputs": [{"name": "hidden", "shape": [2, length // 2, 3]}, {"name": "scores", "shape": [2, 5]}],
    }


BUCKETS = Buckets({"small.onnx": 4, "middle.onnx": 8, "model.onnx": 16}, {
    "small.onnx": _signature(4), "middle.onnx": _signature(8), "model.onnx": _signature(16)
}, mask_input="mask")  # fmt: skip


@pytest.mark.parametrize("array", [np.asarray, torch.as_tensor])
@pytest.mark.parametrize(
    ("real", "graph"), [(1, "small.onnx"), (4, "small.onnx"), (5, "middle.onnx"), (16, "model.onnx")]
)
def test_the_smallest_graph_holding_the_real_positions_runs_a_batch(array, real: int, graph: str) -> None:
    mask = np.zeros((2, 16), np.int64)
    mask[0, :real] = 1
    inputs = {"values": array(np.arange(32.0).reshape(2, 16)), "mask": array(mask)}
    assert BUCKETS.holding(inputs) == graph
    cut = BUCKETS.cut(inputs, graph)
    assert {name: list(value.shape) for name, value in cut.items()} == {"values": [2, BUCKETS.lengths[graph]]} | {
        "mask": [2, BUCKETS.lengths[graph]]
    }
    assert np.asarray(cut["values"]).tolist() == np.arange(32.0).reshape(2, 16)[:, : BUCKETS.lengths[graph]].tolist()


def test_inputs_of_a_graphs_exact_shapes_run_on_it_without_a_mask() -> None:
    inputs = {"values": np.zeros((2, 8), np.float32)}
    assert BUCKETS.matching(inputs) == "middle.onnx" and BUCKETS.holding(inputs) == "middle.onnx"
    assert BUCKETS.holding({"values": np.zeros((2, 11), np.float32)}) == "model.onnx"  # no graph of that shape


class _ShapeModel:
    """A stand-in ORTModel of one bucket: records the shapes it ran, answers outputs of its graph's shapes."""

    def __init__(self, length: int, ran: list[int]) -> None:
        self.length, self.ran = length, ran

    def __call__(self, **inputs: torch.Tensor) -> Any:
        from transformers.modeling_outputs import BaseModelOutput

        assert inputs["values"].shape[1] == self.length
        self.ran.append(self.length)
        return BaseModelOutput(last_hidden_state=torch.ones(2, self.length // 2, 3))


def test_a_bucketed_model_pads_outputs_back_to_the_shapes_the_caller_sent() -> None:
    ran: list[int] = []
    buckets = Buckets({"small.onnx": 4, "model.onnx": 16}, {
        "small.onnx": {**_signature(4), "outputs": [{"name": "last_hidden_state", "shape": [2, 2, 3]}]},
        "model.onnx": {**_signature(16), "outputs": [{"name": "last_hidden_state", "shape": [2, 8, 3]}]},
    }, mask_input="mask")  # fmt: skip
    model = BucketedModel(_ShapeModel(16, ran), buckets, lambda file: _ShapeModel(4, ran))
    mask = torch.zeros(2, 16, dtype=torch.int64)
    mask[:, :3] = 1
    out = model(values=torch.zeros(2, 16), mask=mask).last_hidden_state
    assert ran == [4] and list(out.shape) == [2, 8, 3] and out[:, 2:].abs().sum() == 0  # zeros past the bucket
    assert model(values=torch.zeros(2, 4), mask=torch.ones(2, 4, dtype=torch.int64)).last_hidden_state.shape[1] == 2
    assert model.runs == {4: 2} and model.sessions_loaded == 2


class _EchoPipeline:
    """A stand-in Pipeline: records the order it was given, answers each item with itself."""

    def __call__(self, items: list[Any], **kwargs: Any) -> list[Any]:
        self.seen = list(items)
        return [f"answer to {item}" for item in items]


@pytest.mark.parametrize(("lengths", "order"), [([3, 1, 2], ["b", "c", "a"]), (None, ["a", "b", "c"])])
def test_calls_run_shortest_first_and_answer_in_the_callers_order(lengths, order) -> None:
    pipe = sorted_by_length(_EchoPipeline, lambda items: lengths)()
    assert pipe(["a", "b", "c"]) == ["answer to a", "answer to b", "answer to c"]
    assert pipe.seen == order
    assert isinstance(pipe, _EchoPipeline) and type(pipe).__name__ == "_EchoPipeline"
