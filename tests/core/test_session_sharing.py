"""Sessions are shared by every pipeline and model of a process over the same package and options, and released
with the last one using them."""

from __future__ import annotations

import gc
import weakref

import onnxruntime

from modelexport_core import AutoModelForONNX, create_pipeline


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
