"""Sessions are shared by every pipeline and model of a process over the same package and options, and released
with the last one using them."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import onnxruntime

from modelexport_core import AutoModelForONNX, create_pipeline
from modelexport_core.targets.registry import TUNED_CONFIG


def test_two_pipelines_over_one_package_share_its_session(text_package) -> None:
    package = text_package("text-classification", 2)
    first = create_pipeline("text-classification", package)
    second = create_pipeline("text-classification", package / "model.onnx")
    model = AutoModelForONNX.from_pretrained(package)
    assert first.model.model is second.model.model is model.served.adapter.model
    assert first.model.model.session is second.model.model.session
    assert second("my name is john") == first("my name is john")


def test_other_options_or_sharing_declined_get_their_own_session(text_package) -> None:
    package = text_package("text-classification", 2)
    shared = create_pipeline("text-classification", package)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    assert (
        create_pipeline("text-classification", package, session_options=options).model.model is not shared.model.model
    )
    assert create_pipeline("text-classification", package, share_sessions=False).model.model is not shared.model.model


def test_the_session_is_released_with_the_last_pipeline(text_package) -> None:
    package = text_package("token-classification", 2)
    first = create_pipeline("token-classification", package)
    second = create_pipeline("token-classification", package)
    loaded = weakref.ref(first.model.model)
    del first
    gc.collect()
    assert loaded() is second.model.model
    del second
    gc.collect()
    assert loaded() is None
    assert create_pipeline("token-classification", package)("paris")  # loaded again


def test_bucket_sessions_share_one_copy_of_the_weights(text_model, tmp_path) -> None:
    """Every graph of a bucketed package reads its weights from one memory map and runs on one container of their
    prepacked forms; the answers stay those of sessions that prepack their own copies."""
    from modelexport_core import export

    task, texts = "feature-extraction", ["paris", " ".join(["word"] * 12), "my name is john"]
    export(text_model(task), tmp_path / "pkg", task=task, batch_size=2, sequence_length=[8, 16], validate=False)
    shared = create_pipeline(task, tmp_path / "pkg", share_weights=True)
    alone = create_pipeline(task, tmp_path / "pkg", share_weights=False)(texts)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(shared(texts), alone, strict=True))
    buckets = shared.model.model  # the BucketedModel: each length's ORTModel, loaded by now
    maps = {id(model.shared_weights) for model in buckets._models.values()}
    assert (
        len(buckets._models) == 2
        and len(maps) == 1
        and None not in {m.shared_weights for m in buckets._models.values()}
        and len({id(model.session.container) for model in buckets._models.values()}) == 1
    )


def test_tensors_sharing_bytes_keep_their_own_type_and_shape(tmp_path) -> None:
    """An all-zero float [256] and an all-zero int8 [1024] are stored once (same bytes); each graph still gets
    its own tensor (an int8 package's zero points once came back with another tensor's shape)."""
    from onnx import TensorProto, helper, numpy_helper

    from modelexport_core.package.shared_weights import save_sharing_weights
    from modelexport_core.serve.weights import SharedWeights

    zeros = numpy_helper.from_array(np.zeros(256, np.float32), "zeros")
    points = numpy_helper.from_array(np.zeros(1024, np.int8), "points")
    nodes = [
        helper.make_node("Add", ["x", "zeros"], ["sum"]),
        helper.make_node("Cast", ["points"], ["cast"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [256])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n]) for name, n in (("sum", 256), ("cast", 1024))],
        [zeros, points],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    assert save_sharing_weights({"model.onnx": model}, tmp_path)["shared_bytes"] == 1024
    weights = SharedWeights(tmp_path / "model.onnx.data")  # the sessions read its memory: kept while they run
    unoptimized = onnxruntime.SessionOptions()  # no constant folding: the nodes read the tensors as they run
    unoptimized.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options = weights.options(tmp_path / "model.onnx", unoptimized)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), options, providers=["CPUExecutionProvider"])
    for runner in (session, weights.prepacked(tmp_path / "model.onnx", session)):
        added, cast = runner.run(None, {"x": np.ones(256, np.float32)})
        assert added.shape == (256,) and cast.shape == (1024,) and added.sum() == 256 and not cast.any()


def test_every_session_gets_modelexports_settings(text_model, text_package, tmp_path) -> None:
    """Bucket sessions take turns: threads left spinning after one session's run would slow the next one's; and
    none fuses Add + LayerNormalization (slower on the CPU)."""
    from modelexport_core import export

    task = "feature-extraction"
    export(text_model(task), tmp_path / "pkg", task=task, batch_size=2, sequence_length=[8, 16], validate=False)
    bucketed = create_pipeline(task, tmp_path / "pkg")
    bucketed(["paris", " ".join(["word"] * 12)])  # loads both buckets
    models = [*bucketed.model.model._models.values()]  # the BucketedModel's ORTModel per length
    models.append(create_pipeline("text-classification", text_package("text-classification", 2)).model.model)
    for shared_weights in (True, False):
        single = create_pipeline(task, tmp_path / "pkg", use_buckets=False, share_weights=shared_weights)
        models.append(single.model.model)
    options = [model.session.get_session_options() for model in models]
    assert len(options) == 5
    for key, value in TUNED_CONFIG.items():
        assert all(o.get_session_config_entry(key) == value for o in options)


def test_a_wheel_without_onnxruntimes_shared_library_serves_from_the_python_sessions(
    text_model, tmp_path, monkeypatch
) -> None:
    """The prepacked container needs the C API of the wheel's libonnxruntime; without it the same answers come
    from the Python sessions, which then run."""
    from modelexport_core import export
    from modelexport_core.serve import prepacked

    task, texts = "feature-extraction", ["paris", " ".join(["word"] * 12)]
    export(text_model(task), tmp_path / "pkg", task=task, batch_size=2, sequence_length=[8, 16], validate=False)
    alone = create_pipeline(task, tmp_path / "pkg", share_weights=False)(texts)
    monkeypatch.setattr(prepacked, "_api", [None])
    served = create_pipeline(task, tmp_path / "pkg", share_sessions=False)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(served(texts), alone, strict=True))
    assert all(isinstance(m.session, onnxruntime.InferenceSession) for m in served.model.model._models.values())
