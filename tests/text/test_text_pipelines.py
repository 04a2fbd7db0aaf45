"""create_pipeline on fixed-shape text packages: the PyTorch pipeline's answers, for any number of inputs.

Every package here is a tiny BERT (conftest.write_spread_text_model: weights spread so that labels, tokens and
spans differ from input to input) exported at a fixed batch x 16 tokens. The PyTorch reference is
`transformers.pipeline` on the source model with a tokenizer whose `model_max_length` is the same 16.
"""

from __future__ import annotations

import contextlib
import io
import random
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, Pipeline, TextClassificationPipeline, pipeline

from modelexport_core import FixedShapeWarning, ModelExportError, create_pipeline, hookimpl
from modelexport_core.plugins.manager import get_plugin_manager
from modelexport_core.quiet import quieted
from modelexport_text import ONNXTokenizer

from conftest import OPTIMUM_STATIC_BATCH, TEXT_SEQUENCE_LENGTH
from tiny_models import WORDS

ATOL = 1e-4
SEQ = TEXT_SEQUENCE_LENGTH
LABELS = ["cat", "dog", "weather", "company"]


def _sentences(count: int, seed: int = 0) -> list[str]:
    """Sentences of 1 to 20 words from the tiny vocabulary (the longest exceed 16 tokens: truncated)."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 20))) for _ in range(count)]


TEXTS = [
    "hello world",
    "the cat is happy today",
    "my name is john and i live in paris",
    "a",
    "what is the capital of france?",
    "google is a company in london",
    *_sentences(20),
]
CONTEXT = "john lives in paris and works for google. mary lives in london, the capital city."
LONG_CONTEXT = " ".join(
    [
        "john works for google in paris.",
        "mary works for apple in london.",
        "sarah lives in berlin.",
        "the weather",
    ]
    * 3
)
LONG_TEXT = " ".join(["my name is john and i live in paris with mary who works for google in london"] * 3)
QUESTIONS = ["who lives in paris?", "where does mary live?", "who works for google?", "what is the capital?"]
# With 16 tokens, the pipeline's default doc_stride (max_seq_len // 2 = 8) leaves room for questions of up to
# 4 tokens; longer ones need a smaller doc_stride (the fast tokenizer refuses a stride that fills the window).
SHORT_QUESTIONS = ["who is john?", "where?", "what city?", "who works?"]
QA_STRIDE = {"doc_stride": 4}


# ---------------------------------------------------------------------------------------------------- helpers


def assert_close(ours: Any, ref: Any, where: str = "answer") -> None:
    """Same structure, keys, labels, tokens and spans; numbers (scores, vectors) within ATOL."""
    if isinstance(ref, dict):
        assert isinstance(ours, dict) and ours.keys() == ref.keys(), f"{where}: keys {ours} vs {ref}"
        for key in ref:
            assert_close(ours[key], ref[key], f"{where}[{key!r}]")
    elif isinstance(ref, (list, tuple)):
        assert isinstance(ours, (list, tuple)), f"{where}: {type(ours).__name__} vs a list"
        assert len(ours) == len(ref), f"{where}: {len(ours)} items vs {len(ref)}"
        for index, (mine, theirs) in enumerate(zip(ours, ref, strict=True)):
            assert_close(mine, theirs, f"{where}[{index}]")
    elif isinstance(ref, (torch.Tensor, np.ndarray)):
        ours, ref = np.asarray(ours), np.asarray(ref)
        assert ours.shape == ref.shape, f"{where}: shape {ours.shape} vs {ref.shape}"
        np.testing.assert_allclose(ours, ref, atol=ATOL, rtol=0, err_msg=where)
    elif isinstance(ref, (float, np.floating)):
        assert abs(float(ours) - float(ref)) <= ATOL, f"{where}: {ours} vs {ref}"
    else:
        assert ours == ref, f"{where}: {ours!r} vs {ref!r}"


def _quiet() -> contextlib.AbstractContextManager[None]:
    """Hide the truncation warnings and Optimum's console notes of a call whose answer is what is tested."""
    return quieted(stderr=True)


# These PyTorch pipelines do not truncate unless asked to; a fixed-length package must (and warns it did).
REFERENCE_TRUNCATION: dict[str, dict[str, Any]] = {
    "text-classification": {"truncation": True},
    "fill-mask": {"tokenizer_kwargs": {"truncation": True}},
    "feature-extraction": {"tokenize_kwargs": {"truncation": True}},
}


@pytest.fixture(scope="session")
def reference(text_model: Callable[[str], Path]) -> Callable[..., Pipeline]:
    """Factory: (task, **pipeline kwargs) -> the PyTorch pipeline on the source model, truncating at 16."""
    built: dict[tuple[str, str], Pipeline] = {}

    def get(task: str, **kwargs: Any) -> Pipeline:
        key = (task, repr(sorted(kwargs.items())))
        if key not in built:
            source = text_model(task)
            tokenizer = AutoTokenizer.from_pretrained(source, model_max_length=SEQ)
            kwargs = {**REFERENCE_TRUNCATION.get(task, {}), **kwargs}
            built[key] = pipeline(task, model=str(source), tokenizer=tokenizer, framework="pt", **kwargs)
        return built[key]

    return get


@pytest.fixture(scope="session")
def ours(text_package: Callable[[str, int], Path]) -> Callable[..., Pipeline]:
    """Factory: (task, fixed batch, **pipeline kwargs) -> create_pipeline on the package, built once."""
    built: dict[tuple[str, int, tuple], Pipeline] = {}

    def get(task: str, batch: int = 4, **kwargs: Any) -> Pipeline:
        key = (task, batch, tuple(sorted(kwargs.items())))
        if key not in built:
            built[key] = create_pipeline(task, text_package(task, batch), **kwargs)
        return built[key]

    return get


def _both(ours: Pipeline, reference: Pipeline, *args: Any, batch_size: int = 3, **kwargs: Any) -> tuple[Any, Any]:
    with _quiet():
        return ours(*args, batch_size=batch_size, **kwargs), reference(*args, **kwargs)


# ------------------------------------------------------------------------------------- the six tasks (item 4)


def test_text_classification_matches_pytorch(ours, reference) -> None:
    mine, ref = _both(ours("text-classification"), reference("text-classification"), TEXTS, top_k=None)
    assert_close(mine, ref)
    assert len({answer[0]["label"] for answer in ref}) == 3, "the tiny model should tell inputs apart"
    length = len(reference("text-classification").tokenizer(LONG_TEXT)["input_ids"])
    with pytest.warns(FixedShapeWarning, match=f"of length {length} was truncated to the fixed {SEQ}"):
        ours("text-classification")(LONG_TEXT)
    pairs = [{"text": question, "text_pair": CONTEXT} for question in QUESTIONS]
    assert_close(*_both(ours("text-classification"), reference("text-classification"), pairs, top_k=None))


@pytest.mark.parametrize("aggregation_strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_matches_pytorch(ours, reference, aggregation_strategy: str) -> None:
    task = "token-classification"
    mine, ref = _both(
        ours(task, aggregation_strategy=aggregation_strategy),
        reference(task, aggregation_strategy=aggregation_strategy),
        TEXTS,
    )
    assert_close(mine, ref)
    found = {entity.get("entity", entity.get("entity_group")) for answer in ref for entity in answer}
    assert len(found) >= 2, f"the tiny model should tag tokens differently, found only {found}"


@pytest.mark.parametrize("aggregation_strategy", ["simple", "first", "max"])
def test_token_classification_long_text_uses_the_pipeline_stride(ours, reference, aggregation_strategy) -> None:
    """A text three times the fixed length is served whole in overlapping windows, never cut (no warning)."""
    task = "token-classification"
    kwargs = {"aggregation_strategy": aggregation_strategy, "stride": 4}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FixedShapeWarning)
        mine = ours(task, **kwargs)([LONG_TEXT, "hello world"], batch_size=2)
    ref = reference(task, **kwargs)([LONG_TEXT, "hello world"])
    assert_close(mine, ref)
    assert max(entity["end"] for entity in mine[0]) > len(LONG_TEXT) * 2 // 3, "the end of the text was served"


def test_question_answering_matches_pytorch(ours, reference) -> None:
    task = "question-answering"
    contexts = [CONTEXT] * len(QUESTIONS)
    mine, ref = _both(ours(task), reference(task), question=QUESTIONS, context=contexts, top_k=3, **QA_STRIDE)
    assert_close(mine, ref)
    assert len({answer[0]["answer"] for answer in ref}) >= 2, "the tiny model should answer questions differently"
    assert_close(*_both(ours(task), reference(task), question=SHORT_QUESTIONS[0], context=CONTEXT))


@pytest.mark.parametrize("stride_kwargs", [{}, {"max_seq_len": SEQ, "doc_stride": 4}, {"doc_stride": 6}])
def test_question_answering_long_context_uses_doc_stride(ours, reference, stride_kwargs: dict) -> None:
    """A context several times the fixed length is read whole in document-stride windows, not cut.

    With no arguments the pipeline derives max_seq_len (16) and doc_stride (8) from the ONNXTokenizer's
    model_max_length; the PyTorch reference is given the same max_seq_len and doc_stride.
    """
    task = "question-answering"
    kwargs = {"max_seq_len": SEQ, "doc_stride": SEQ // 2, **stride_kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FixedShapeWarning)
        mine = ours(task)(question=SHORT_QUESTIONS, context=[LONG_CONTEXT] * 4, top_k=60, **stride_kwargs)
    ref = reference(task)(question=SHORT_QUESTIONS, context=[LONG_CONTEXT] * 4, top_k=60, **kwargs)
    assert_close(mine, ref)
    assert max(answer["end"] for answers in mine for answer in answers) > len(LONG_CONTEXT) // 2, "read to the end"


def test_feature_extraction_returns_real_tokens_only(ours, reference, text_model) -> None:
    """The vectors of the real tokens, within ATOL of PyTorch at batch_size=1; no padding rows or tokens."""
    tokenizer = AutoTokenizer.from_pretrained(text_model("feature-extraction"), model_max_length=SEQ)
    with _quiet():
        mine = ours("feature-extraction")(TEXTS, batch_size=3)
        ref = [reference("feature-extraction")(text, batch_size=1) for text in TEXTS]
        tensors = ours("feature-extraction")(TEXTS[:5], batch_size=2, return_tensors=True)
    assert_close(mine, ref)
    for text, vectors in zip(TEXTS, mine, strict=True):
        real = len(tokenizer(text, truncation=True)["input_ids"])
        assert np.asarray(vectors).shape == (1, real, 32)
    assert [tuple(t.shape) for t in tensors] == [(1, len(r[0]), 32) for r in ref[:5]]
    assert_close(tensors, [torch.tensor(r) for r in ref[:5]])


def test_fill_mask_matches_pytorch(ours, reference) -> None:
    task = "fill-mask"
    texts = ["the [MASK] is happy", "paris is the [MASK] of france", "[MASK]", "my [MASK] is [MASK] today"]
    mine, ref = _both(ours(task), reference(task), texts, top_k=10)
    assert_close(mine, ref)
    assert len({answer[0]["token"] for answer in ref[:3]}) == 3
    targets = ["cat", "dog", "paris", "london"]
    assert_close(*_both(ours(task), reference(task), texts[:2], targets=targets))


@pytest.mark.parametrize("multi_label", [False, True])
def test_zero_shot_classification_matches_pytorch(ours, reference, multi_label: bool) -> None:
    task = "zero-shot-classification"
    mine, ref = _both(ours(task), reference(task), TEXTS, candidate_labels=LABELS, multi_label=multi_label)
    assert_close(mine, ref)
    assert len({answer["labels"][0] for answer in ref}) >= 2, "the tiny model should rank labels differently"
    template = "this text is about {}."
    assert_close(
        *_both(ours(task), reference(task), TEXTS[0], candidate_labels="cat, dog", hypothesis_template=template)
    )


# ------------------------------------------------------------------------------ any number of inputs (item 3)

# Per task: the inputs of a call with `count` items, and the call's keyword arguments.
BATCH_CASES: dict[str, tuple[Callable[[int], dict[str, Any]], dict[str, Any]]] = {
    "text-classification": (lambda n: {"inputs": TEXTS[:n]}, {"top_k": None}),
    "token-classification": (lambda n: {"inputs": TEXTS[:n]}, {}),
    "question-answering": (
        lambda n: {"question": [QUESTIONS[i % 4] for i in range(n)], "context": [TEXTS[i] for i in range(n)]},
        QA_STRIDE,
    ),
    "feature-extraction": (lambda n: {"inputs": TEXTS[:n]}, {}),
    "fill-mask": (lambda n: {"inputs": [f"the [MASK] {text}" for text in TEXTS[:n]]}, {}),
    "zero-shot-classification": (lambda n: {"sequences": TEXTS[:n]}, {"candidate_labels": LABELS[:3]}),
}


def _counts(fixed_batch: int) -> list[int]:
    """1, B-1, B, B+1 and 5B+3 inputs (B-1 = 0 on a batch-1 model: an empty list)."""
    return sorted({1, fixed_batch - 1, fixed_batch, fixed_batch + 1, 5 * fixed_batch + 3})


@pytest.fixture(scope="session")
def reference_answers(reference) -> Callable[[str, int], Any]:
    """Factory: (task, count) -> PyTorch's answer (batch_size=1) to count inputs of a task, or its error."""
    answers: dict[tuple[str, int], Any] = {}

    def get(task: str, count: int) -> Any:
        if (task, count) not in answers:
            inputs, kwargs = BATCH_CASES[task]
            try:
                with _quiet():
                    answers[task, count] = reference(task)(**inputs(count), **kwargs)
            except ValueError as error:
                answers[task, count] = error
        return answers[task, count]

    return get


@pytest.mark.parametrize("pipeline_batch", [1, 2, 4, 7])
@pytest.mark.parametrize("fixed_batch", [1, 4])
@pytest.mark.parametrize("task", list(BATCH_CASES))
def test_any_number_of_inputs(ours, reference_answers, task: str, fixed_batch: int, pipeline_batch: int) -> None:
    """Nothing dropped, no padded row returned, the PyTorch answers, whatever the counts and batch sizes."""
    inputs, kwargs = BATCH_CASES[task]
    served = ours(task, fixed_batch)
    for count in _counts(fixed_batch):
        ref = reference_answers(task, count)
        if isinstance(ref, Exception):  # token-classification refuses an empty list
            with _quiet(), pytest.raises(type(ref), match=str(ref)):
                served(**inputs(count), batch_size=pipeline_batch, **kwargs)
            continue
        with _quiet():
            mine = served(**inputs(count), batch_size=pipeline_batch, **kwargs)
        if count != 1:
            assert len(mine) == count
        assert_close(mine, ref, f"{count} inputs")


def test_batch_size_given_when_the_pipeline_is_created(text_package, reference_answers) -> None:
    classifier = create_pipeline("text-classification", text_package("text-classification", 4), batch_size=7)
    with _quiet():
        assert_close(classifier(TEXTS[:23], top_k=None), reference_answers("text-classification", 23))


def test_model_given_as_model_file_or_ort_model(text_package, reference_answers) -> None:
    from optimum.onnxruntime import ORTModelForSequenceClassification

    package = text_package("text-classification", 4)
    with _quiet():
        ort_model = ORTModelForSequenceClassification.from_pretrained(package)
    for model in (package / "model.onnx", ort_model):
        classifier = create_pipeline("text-classification", model)
        assert classifier.model.batch_size == 4
        with _quiet():
            assert_close(classifier(TEXTS[:5], top_k=None), reference_answers("text-classification", 5))


# ------------------------------------------------------------------------------------------- routing (item 3)


@pytest.fixture
def routing_spy() -> Iterator[list[tuple[type, Any]]]:
    """A plugin that records every route_processor call and leaves the answer to the other plugins."""
    calls: list[tuple[type, Any]] = []

    class Spy:
        @hookimpl(tryfirst=True)
        def route_processor(self, pipeline_class: type, processor: Any) -> None:
            calls.append((pipeline_class, processor))

    manager = get_plugin_manager()
    manager.register(Spy(), name="routing-spy")
    try:
        yield calls
    finally:
        manager.unregister(name="routing-spy")


@pytest.mark.parametrize("given", ["onnx_tokenizer", "plain_tokenizer", "none"])
def test_data_processor_is_routed_through_the_plugins(text_package, text_model, reference, routing_spy, given):
    package = text_package("text-classification", 4)
    plain = AutoTokenizer.from_pretrained(text_model("text-classification"))
    processor = {"onnx_tokenizer": ONNXTokenizer(plain, 4, SEQ), "plain_tokenizer": plain, "none": None}[given]
    classifier = create_pipeline("text-classification", package, data_processor=processor)
    assert isinstance(classifier.tokenizer, ONNXTokenizer)
    assert classifier.tokenizer.shapes == {"batch_size": 4, "sequence_length": SEQ}
    assert classifier.tokenizer.shape_source == {"onnx_tokenizer": "given"}.get(given, "export_metadata")
    if given == "onnx_tokenizer":
        assert classifier.tokenizer is processor
    if given == "plain_tokenizer":
        assert classifier.tokenizer.wrapped is plain
    [(pipeline_class, routed)] = routing_spy
    assert issubclass(pipeline_class, TextClassificationPipeline) and routed is classifier.tokenizer
    with _quiet():
        assert_close(classifier(TEXTS[:5], top_k=None), reference("text-classification")(TEXTS[:5], top_k=None))


def test_core_routes_by_what_the_processor_is_and_what_the_pipeline_loads(text_model) -> None:
    """Core's rule: isinstance against transformers' bases (of the wrapped tokenizer), the class's flags."""
    from transformers import FillMaskPipeline, ImageClassificationPipeline

    from modelexport_core.plugins.builtin import route_processor

    tokenizer = ONNXTokenizer(AutoTokenizer.from_pretrained(text_model("fill-mask")), 1, SEQ)
    assert route_processor(pipeline_class=FillMaskPipeline, processor=tokenizer) == {"tokenizer": tokenizer}
    assert ImageClassificationPipeline._load_tokenizer is False
    assert route_processor(pipeline_class=ImageClassificationPipeline, processor=tokenizer) is None
    assert route_processor(pipeline_class=FillMaskPipeline, processor=object()) is None


def test_a_plugin_may_route_a_processor_itself(text_package) -> None:
    """The first plugin that answers route_processor decides the pipeline keyword (core's rule comes last)."""
    seen: list[type] = []

    class Router:
        @hookimpl(tryfirst=True)
        def route_processor(self, pipeline_class: type, processor: Any) -> dict[str, Any]:
            seen.append(pipeline_class)
            return {"tokenizer": processor, "function_to_apply": "sigmoid"}

    manager = get_plugin_manager()
    manager.register(Router(), name="test-router")
    try:
        classifier = create_pipeline("text-classification", text_package("text-classification", 4))
    finally:
        manager.unregister(name="test-router")
    assert seen and classifier._postprocess_params.get("function_to_apply") == "sigmoid"


def test_a_processor_that_cannot_feed_the_model_is_a_user_error(text_package, text_model) -> None:
    package = text_package("text-classification", 4)
    with pytest.raises(ModelExportError, match="A object cannot preprocess the inputs of this text model") as caught:
        create_pipeline("text-classification", package, data_processor=object())
    assert "\n" not in str(caught.value) and "install" not in str(caught.value)
    longer = ONNXTokenizer(AutoTokenizer.from_pretrained(text_model("text-classification")), 4, 32)
    with pytest.raises(ModelExportError, match="makes sequence_length=32 but the model is fixed at sequence_length=16"):
        create_pipeline("text-classification", package, data_processor=longer)


# -------------------------------------------------------------------------------- Optimum's pipeline (item 5)


@pytest.mark.parametrize(
    ("task", "call"),
    [
        ("text-classification", lambda p: p(TEXTS[:5], top_k=None)),
        ("token-classification", lambda p: p(TEXTS[:5])),
        (
            "question-answering",
            lambda p: p(question=QUESTIONS, context=[LONG_CONTEXT] * 4, top_k=2, **QA_STRIDE),
        ),
        ("fill-mask", lambda p: p(["the [MASK] is happy", "paris is the [MASK] of france"])),
    ],
)
def test_optimum_pipeline_serves_a_batch_1_package(text_package, reference, task: str, call) -> None:
    """optimum.pipelines.pipeline(task, model=OUT_DIR, accelerator="ort", tokenizer=ONNXTokenizer), as is."""
    from optimum.pipelines import pipeline as optimum_pipeline

    from modelexport_core import ONNXAutoProcessor

    package = text_package(task, 1)
    tokenizer = ONNXAutoProcessor.from_model(package)
    with _quiet():
        served = optimum_pipeline(task, model=str(package), accelerator="ort", tokenizer=tokenizer)
        mine = call(served)
        ref = call(reference(task))
    assert type(served.model).__name__.startswith("ORTModelFor")
    assert_close(mine, ref)


@pytest.mark.parametrize(
    ("fixed_batch", "runs", "refused"),
    [
        (4, [(8, 4)], [(2, 1), (4, 1), (5, 4)]),  # (number of texts, pipeline batch_size)
        (1, [(3, 1)], [(2, 2), (3, 4)]),
    ],
)
def test_optimum_pipeline_runs_only_batches_of_the_fixed_size(text_package, reference, fixed_batch, runs, refused):
    """Optimum's plain ORTModel feeds the pipeline's batch as it is: a package runs only when every batch the
    pipeline forms has exactly the fixed number of rows; onnxruntime refuses any other (the README points
    such users to create_pipeline, whose adapter pads)."""
    from optimum.pipelines import pipeline as optimum_pipeline

    from modelexport_core import ONNXAutoProcessor

    package = text_package("text-classification", fixed_batch)
    with _quiet():
        served = optimum_pipeline(
            "text-classification",
            model=str(package),
            accelerator="ort",
            tokenizer=ONNXAutoProcessor.from_model(package),
        )
        for count, batch_size in runs:
            ref = reference("text-classification")(TEXTS[:count])
            assert_close(served(TEXTS[:count], batch_size=batch_size), ref)
        refusal = rf"invalid dimensions for input: input_ids.*\n.*index: 0 Got: \d+ Expected: {fixed_batch}"
        for count, batch_size in refused:
            with pytest.raises(Exception, match=refusal):
                served(TEXTS[:count], batch_size=batch_size)


# ------------------------------------------------------------------------- other exporters' packages (item 6)


@pytest.mark.parametrize("task", ["text-classification", "token-classification", "question-answering"])
def test_optimum_static_export_is_served(optimum_package, reference, task: str) -> None:
    """A package from Optimum's exporter with no_dynamic_axes: shapes from the graph, PyTorch's answers."""
    package = optimum_package(task, True)
    inputs, kwargs = BATCH_CASES[task]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FixedShapeWarning)
        served = create_pipeline(task, package)
    assert served.tokenizer.shape_source == "graph"
    assert served.tokenizer.shapes == {"batch_size": OPTIMUM_STATIC_BATCH, "sequence_length": SEQ}
    with _quiet():
        assert_close(served(**inputs(7), batch_size=3, **kwargs), reference(task)(**inputs(7), **kwargs))


@pytest.mark.parametrize("task", ["text-classification", "feature-extraction"])
def test_optimum_dynamic_export_falls_back_to_defaults(optimum_package, text_model, task: str) -> None:
    """Dynamic axes: a FixedShapeWarning naming the dims, batch 1 x 128 tokens, still PyTorch's answers."""
    package = optimum_package(task, False)
    with pytest.warns(FixedShapeWarning, match=r"batch_size=1.*sequence_length=128"):
        served = create_pipeline(task, package)
    assert served.tokenizer.shape_source == "defaults"
    assert served.tokenizer.shapes == {"batch_size": 1, "sequence_length": 128}
    inputs, kwargs = BATCH_CASES[task]
    reference = pipeline(task, model=str(text_model(task)), framework="pt")
    with _quiet():
        assert_close(served(**inputs(6), batch_size=4, **kwargs), reference(**inputs(6), **kwargs))


# ------------------------------------------------------------------------------------ property tests (item 7)

_TEXT = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=" \t\n\u00a0\u3000", max_size=5),
    st.lists(st.sampled_from([*WORDS, "[MASK]", "?", "é", "東京", "🙂"]), max_size=40).map(" ".join),
)
_PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(call: Callable[[], Any]) -> tuple[Any, BaseException | None, bool]:
    """The answer or the error of a call, and whether it warned that an input was truncated."""
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("always")
        try:
            answer, error = call(), None
        except BaseException as raised:  # the outcome under test
            # The fast tokenizer's Rust panic (a stride that fills the window) is a BaseException.
            if not isinstance(raised, Exception) and type(raised).__name__ != "PanicException":
                raise
            answer, error = None, raised
    return answer, error, any(issubclass(w.category, FixedShapeWarning) for w in caught)


def _assert_same_outcome(ours: Callable[[], Any], reference: Callable[[], Any], reference_fits: bool = True) -> None:
    """Ours raises exactly where PyTorch's raises, then with a one-line message; else the same answers.

    `reference_fits=False`: PyTorch's pipeline runs this input longer than the fixed length (zero-shot does
    when a hypothesis alone overflows it), which a fixed-shape model cannot: ours must warn that it truncated.
    """
    mine, my_error, truncated = _outcome(ours)
    ref, ref_error, _ = _outcome(reference)
    assert (my_error is None) == (ref_error is None), f"ours: {my_error!r}; PyTorch: {ref_error!r}"
    if my_error is not None:
        message = str(my_error).strip()
        assert message and "\n" not in message, f"not a one-line message: {message!r}"
    elif reference_fits:
        assert_close(mine, ref)
    else:
        assert truncated, "an input longer than the fixed length was cut without a FixedShapeWarning"


@pytest.fixture(scope="session")
def property_pipelines(ours, reference) -> Callable[[str], tuple[Pipeline, Pipeline]]:
    return lambda task, **kwargs: (ours(task, 4, **kwargs), reference(task, **kwargs))


@_PROPERTY
@given(texts=st.one_of(_TEXT, st.lists(_TEXT, max_size=6)), top_k=st.sampled_from([1, 5]))
def test_property_fill_mask(property_pipelines, texts, top_k: int) -> None:
    mine, ref = property_pipelines("fill-mask")
    _assert_same_outcome(lambda: mine(texts, top_k=top_k, batch_size=3), lambda: ref(texts, top_k=top_k))


@_PROPERTY
@given(question=_TEXT, context=_TEXT)
def test_property_question_answering(property_pipelines, question: str, context: str) -> None:
    mine, ref = property_pipelines("question-answering")
    _assert_same_outcome(
        lambda: mine(question=question, context=context),
        lambda: ref(question=question, context=context, max_seq_len=SEQ, doc_stride=SEQ // 2),
    )


@_PROPERTY
@given(texts=st.one_of(_TEXT, st.lists(_TEXT, max_size=6), st.fixed_dictionaries({"text": _TEXT, "text_pair": _TEXT})))
def test_property_text_classification(property_pipelines, texts) -> None:
    mine, ref = property_pipelines("text-classification")
    _assert_same_outcome(lambda: mine(texts, top_k=None, batch_size=2), lambda: ref(texts, top_k=None))


@_PROPERTY
@given(texts=st.one_of(_TEXT, st.lists(_TEXT, max_size=6)), strategy=st.sampled_from(["none", "simple"]))
def test_property_token_classification(property_pipelines, texts, strategy: str) -> None:
    mine, ref = property_pipelines("token-classification", aggregation_strategy=strategy)
    _assert_same_outcome(lambda: mine(texts, batch_size=5), lambda: ref(texts))


@_PROPERTY
@given(texts=st.one_of(_TEXT, st.lists(_TEXT, max_size=6)))
def test_property_feature_extraction(property_pipelines, texts) -> None:
    mine, ref = property_pipelines("feature-extraction")
    _assert_same_outcome(lambda: mine(texts, batch_size=2), lambda: ref(texts, batch_size=1))


@_PROPERTY
@given(
    texts=st.one_of(_TEXT, st.lists(_TEXT, max_size=4)),
    labels=st.one_of(st.lists(st.sampled_from([*LABELS, "", " "]), max_size=3), _TEXT),
    template=st.sampled_from(["This example is {}.", "about {}", "no placeholder"]),
)
def test_property_zero_shot(property_pipelines, texts, labels, template: str) -> None:
    mine, ref = property_pipelines("zero-shot-classification")
    kwargs = {"candidate_labels": labels, "hypothesis_template": template}
    labels = [label.strip() for label in labels.split(",") if label.strip()] if isinstance(labels, str) else labels
    # PyTorch's pipeline truncates only the text; where that cannot make a pair fit (the text would vanish)
    # it runs the pair untruncated.
    specials = ref.tokenizer.num_special_tokens_to_add(pair=True)
    hypotheses = [len(ref.tokenizer.tokenize(template.format(label))) + specials for label in labels]
    texts_tokens = [len(ref.tokenizer.tokenize(text)) for text in ([texts] if isinstance(texts, str) else texts)]
    fits = all(length < SEQ or text + length <= SEQ for length in hypotheses for text in texts_tokens)
    _assert_same_outcome(lambda: mine(texts, batch_size=3, **kwargs), lambda: ref(texts, **kwargs), fits)
