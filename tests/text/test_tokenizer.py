"""ONNXTokenizer: every encoding has the fixed sequence length; everything else is the wrapped tokenizer's."""

from __future__ import annotations

import contextlib
import string
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, BertTokenizer, BertTokenizerFast
from transformers.pipelines.base import pad_collate_fn

from modelexport_core.serve.fixed import FixedShapeWarning
from modelexport_text import ONNXTokenizer, plugin

from tiny_models import vocabulary

SEQ = 16
SHORT = "the quick brown fox"
LONG = " ".join(["the quick brown fox jumps over the lazy dog"] * 4)  # 36 words: 38 tokens with [CLS] [SEP]
LONG_TOKENS = 38
QUESTION = "what is the answer"


def _shapes(encoding: Any) -> set[tuple[int, ...]]:
    return {np.asarray(value).shape for value in encoding.values()}


@pytest.fixture
def tokenizer(tiny_tokenizer_dir: Path) -> BertTokenizerFast:
    return BertTokenizerFast.from_pretrained(tiny_tokenizer_dir)


@pytest.fixture
def onnx_tokenizer(tokenizer: BertTokenizerFast) -> ONNXTokenizer:
    return ONNXTokenizer(tokenizer, batch_size=2, sequence_length=SEQ)


@pytest.fixture(scope="module")
def shared_tokenizer(tiny_tokenizer_dir: Path) -> ONNXTokenizer:
    """One wrapper for the property tests (hypothesis reruns a test body without re-creating fixtures)."""
    tokenizer = BertTokenizerFast.from_pretrained(tiny_tokenizer_dir)
    return ONNXTokenizer(tokenizer, batch_size=1, sequence_length=SEQ)


@contextlib.contextmanager
def _no_fixed_shape_warning() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FixedShapeWarning)
        yield


CALLS = {
    "single": ((SHORT,), 1),
    "pair": ((QUESTION, SHORT), 1),
    "list": ((["hello", SHORT, "who"],), 3),
    "list of pairs": (([QUESTION, "who"], [SHORT, "hello world"]), 2),
    "list of pair tuples": (([(QUESTION, SHORT), ("who", "hello")],), 2),
}


@pytest.mark.parametrize("return_tensors", [None, "np", "pt"])
@pytest.mark.parametrize("call", CALLS, ids=list(CALLS))
def test_every_encoding_has_the_fixed_length(
    onnx_tokenizer: ONNXTokenizer, call: str, return_tensors: str | None
) -> None:
    args, rows = CALLS[call]
    encoding = onnx_tokenizer(*args, return_tensors=return_tensors)
    single = return_tensors is None and not isinstance(args[0], list)
    assert _shapes(encoding) == {(SEQ,) if single else (rows, SEQ)}
    assert set(encoding) == {"input_ids", "token_type_ids", "attention_mask"}


def test_short_text_is_kept_whole_and_padded(onnx_tokenizer: ONNXTokenizer) -> None:
    encoding = onnx_tokenizer(SHORT)
    assert onnx_tokenizer.decode(encoding["input_ids"], skip_special_tokens=True) == SHORT
    assert encoding["attention_mask"] == [1] * 6 + [0] * (SEQ - 6)
    assert encoding["input_ids"][6:] == [onnx_tokenizer.pad_token_id] * (SEQ - 6)


@pytest.mark.parametrize(
    "caller_kwargs",
    [
        {"padding": True},
        {"padding": "longest"},
        {"max_length": 4},
        {"pad_to_multiple_of": 5},
        {"truncation": False},
    ],
    ids=str,
)
def test_caller_padding_and_length_are_overridden(onnx_tokenizer: ONNXTokenizer, caller_kwargs: dict) -> None:
    encoding = onnx_tokenizer(["hello", SHORT], return_tensors="pt", **caller_kwargs)
    assert _shapes(encoding) == {(2, SEQ)}


def test_truncation_warns_with_the_untruncated_length(onnx_tokenizer: ONNXTokenizer) -> None:
    with pytest.warns(FixedShapeWarning, match=f"length {LONG_TOKENS} was truncated to the fixed {SEQ}"):
        encoding = onnx_tokenizer(LONG)
    assert len(encoding["input_ids"]) == SEQ
    assert onnx_tokenizer.convert_ids_to_tokens(encoding["input_ids"][-1]) == "[SEP]"


def test_no_truncation_requested_still_truncates_and_warns(onnx_tokenizer: ONNXTokenizer) -> None:
    with pytest.warns(FixedShapeWarning, match=f"length {LONG_TOKENS}"):
        encoding = onnx_tokenizer(LONG, truncation="do_not_truncate", return_tensors="np")
    assert encoding["input_ids"].shape == (1, SEQ)


def test_truncated_pair_warns_with_the_pair_length(onnx_tokenizer: ONNXTokenizer) -> None:
    with pytest.warns(FixedShapeWarning, match=f"length {LONG_TOKENS + 4 + 1}"):  # + question, one more [SEP]
        onnx_tokenizer(QUESTION, LONG)


def test_batch_warns_once_naming_its_longest_truncated_text(onnx_tokenizer: ONNXTokenizer) -> None:
    twenty_words = " ".join(LONG.split()[:20])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoding = onnx_tokenizer(["hello", twenty_words, LONG, SHORT], return_tensors="np")
    messages = [str(w.message) for w in caught if issubclass(w.category, FixedShapeWarning)]
    name = "Tokenized text 2 of the batch (the longest of 2 truncated)"
    assert messages == [f"{name} of length {LONG_TOKENS} was truncated to the fixed {SEQ}"]
    assert encoding["input_ids"].shape == (4, SEQ)


def test_a_bucketed_batch_reaching_the_fixed_length_is_truncated_and_warns_once(tokenizer: BertTokenizerFast) -> None:
    """The one-call path of a bucketed tokenizer pads a batch with a text too long for every bucket to the fixed
    length, truncating it with the same warning."""
    bucketed = ONNXTokenizer(tokenizer, batch_size=2, sequence_length=SEQ).for_buckets([4, 8])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoding = bucketed(["hello", LONG], return_tensors="np")
    messages = [str(w.message) for w in caught if issubclass(w.category, FixedShapeWarning)]
    assert messages == [f"Tokenized text 1 of the batch of length {LONG_TOKENS} was truncated to the fixed {SEQ}"]
    expected = tokenizer(["hello", LONG], padding="max_length", truncation=True, max_length=SEQ, return_tensors="np")
    for key, value in expected.items():
        np.testing.assert_array_equal(encoding[key], value)


def test_input_of_exactly_the_fixed_length_does_not_warn(onnx_tokenizer: ONNXTokenizer) -> None:
    exact = " ".join(LONG.split()[: SEQ - 2])
    with _no_fixed_shape_warning():
        encoding = onnx_tokenizer([exact, "hello"])
    assert onnx_tokenizer.decode(encoding["input_ids"][0], skip_special_tokens=True) == exact


def test_left_padding_is_kept_and_truncation_still_warns(onnx_tokenizer: ONNXTokenizer) -> None:
    onnx_tokenizer.padding_side = "left"
    assert onnx_tokenizer.wrapped.padding_side == "left"
    encoding = onnx_tokenizer("hello")
    assert encoding["attention_mask"] == [0] * (SEQ - 3) + [1] * 3
    with pytest.warns(FixedShapeWarning, match=f"length {LONG_TOKENS}"):
        onnx_tokenizer(["hello", LONG])


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("tensors", ["np", "pt"])
def test_a_batch_padded_to_its_bucket_in_one_call_equals_the_plain_tokenizers(
    tokenizer: BertTokenizerFast, side: str, tensors: str
) -> None:
    """A plain batch of texts is tokenized once and padded to its bucket: the arrays the plain tokenizer gives
    when asked for that length."""
    tokenizer.padding_side = side
    bucketed = ONNXTokenizer(tokenizer, batch_size=2, sequence_length=SEQ).for_buckets([4, 8, 12])
    texts = ["hello", SHORT]  # 6 tokens: the 8 bucket
    encoding = bucketed(texts, return_tensors=tensors)
    expected = tokenizer(texts, padding="max_length", max_length=8, return_tensors="np")
    assert set(encoding) == set(expected)
    for key, value in expected.items():
        assert type(encoding[key]).__module__.startswith("torch" if tensors == "pt" else "numpy")
        np.testing.assert_array_equal(np.asarray(encoding[key]), value)


@pytest.mark.parametrize(
    ("words", "name", "rows"),
    [
        (LONG.split(), "Tokenized text", 1),
        ([["hello", "world"], LONG.split()], "Tokenized text 1 of the batch", 2),
    ],
    ids=["single", "batch"],
)
def test_words_split_into_tokens_warn_with_their_length(
    onnx_tokenizer: ONNXTokenizer, words: list, name: str, rows: int
) -> None:
    with pytest.warns(FixedShapeWarning, match=f"^{name} of length {LONG_TOKENS} was"):
        encoding = onnx_tokenizer(words, is_split_into_words=True, return_tensors="pt")
    assert encoding["input_ids"].shape == (rows, SEQ)


def test_caller_truncation_strategy_is_kept(onnx_tokenizer: ONNXTokenizer) -> None:
    question = "what is the answer where who how this that"  # 9 tokens: more than half the fixed length
    with pytest.warns(FixedShapeWarning):
        kept = onnx_tokenizer(question, LONG, truncation="only_second")["input_ids"]
        both_cut = onnx_tokenizer(question, LONG)["input_ids"]  # longest_first trims the question too
    assert onnx_tokenizer.decode(kept[1:10]) == question
    assert len(kept) == len(both_cut) == SEQ
    assert onnx_tokenizer.decode(both_cut[1:10]) != question


def test_stride_overflow_rows_have_the_fixed_length_and_do_not_warn(onnx_tokenizer: ONNXTokenizer) -> None:
    with _no_fixed_shape_warning():
        encoding = onnx_tokenizer(
            ["hello", LONG], stride=4, truncation=True, return_overflowing_tokens=True, return_tensors="pt"
        )
    rows = encoding["input_ids"].shape[0]
    assert rows > 3
    assert _shapes(encoding) - {(rows,)} == {(rows, SEQ)}  # overflow_to_sample_mapping is (rows,)
    assert encoding["overflow_to_sample_mapping"].tolist() == [0] + [1] * (rows - 1)
    covered = " ".join(onnx_tokenizer.batch_decode(encoding["input_ids"][1:], skip_special_tokens=True))
    assert set(covered.split()) == set(LONG.split())


def test_question_answering_spans_keep_the_question_and_the_fixed_length(
    onnx_tokenizer: ONNXTokenizer,
) -> None:
    # What the question-answering pipeline asks for: its own padding, max_length and truncation side.
    with _no_fixed_shape_warning():
        encoding = onnx_tokenizer(
            text=QUESTION,
            text_pair=LONG,
            padding="longest",
            truncation="only_second",
            max_length=384,
            stride=4,
            return_token_type_ids=True,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
    assert {len(row) for row in encoding["input_ids"]} == {SEQ}
    assert len(encoding["input_ids"]) > 1
    question = onnx_tokenizer(QUESTION)["input_ids"][:6]  # [CLS] what is the answer [SEP]
    assert all(row[:6] == question for row in encoding["input_ids"])


def test_delegates_everything_else_to_the_wrapped_tokenizer(
    onnx_tokenizer: ONNXTokenizer, tokenizer: BertTokenizerFast
) -> None:
    ids = onnx_tokenizer(["hello world", SHORT])["input_ids"]
    assert onnx_tokenizer.batch_decode(ids, skip_special_tokens=True) == ["hello world", SHORT]
    assert onnx_tokenizer.convert_ids_to_tokens(ids[0][:4]) == ["[CLS]", "hello", "world", "[SEP]"]
    assert (onnx_tokenizer.cls_token, onnx_tokenizer.sep_token) == ("[CLS]", "[SEP]")
    assert onnx_tokenizer.pad_token_id == 0
    assert onnx_tokenizer.is_fast
    assert len(onnx_tokenizer) == len(tokenizer) == len(vocabulary())
    assert onnx_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert (onnx_tokenizer.batch_size, onnx_tokenizer.sequence_length) == (2, SEQ)


def test_model_max_length_is_the_fixed_length(onnx_tokenizer: ONNXTokenizer, tokenizer: BertTokenizerFast) -> None:
    assert tokenizer.model_max_length == 512
    assert onnx_tokenizer.model_max_length == SEQ
    assert onnx_tokenizer.max_len_single_sentence == SEQ - 2
    assert onnx_tokenizer.max_len_sentences_pair == SEQ - 3


def test_setting_model_max_length_keeps_the_fixed_length(
    onnx_tokenizer: ONNXTokenizer, tokenizer: BertTokenizerFast
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        onnx_tokenizer.model_max_length = SEQ
    with pytest.warns(UserWarning, match=f"model_max_length stays {SEQ}"):
        onnx_tokenizer.model_max_length = 1024
    assert onnx_tokenizer.model_max_length == SEQ
    assert tokenizer.model_max_length == 1024
    with pytest.warns(FixedShapeWarning, match=f"length {2 * LONG_TOKENS - 2} was truncated"):
        assert len(onnx_tokenizer(LONG + " " + LONG)["input_ids"]) == SEQ


def test_save_pretrained_loads_back_as_the_original_class(onnx_tokenizer: ONNXTokenizer, tmp_path: Path) -> None:
    onnx_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded) is BertTokenizerFast
    assert loaded.model_max_length == 512  # the wrapped tokenizer's own, not the ONNX model's
    assert loaded(SHORT)["input_ids"] == onnx_tokenizer.wrapped(SHORT)["input_ids"]


def test_pad_and_pipeline_collate_keep_the_fixed_length(onnx_tokenizer: ONNXTokenizer) -> None:
    rows = [onnx_tokenizer(text) for text in ("hello", SHORT, LONG[:30])]
    assert onnx_tokenizer.pad(rows, return_tensors="pt")["input_ids"].shape == (3, SEQ)
    # What a pipeline's preprocess yields, one tensor dict per input, then its collate with batch_size > 1.
    items = [onnx_tokenizer(text, return_tensors="pt") for text in ("hello", SHORT)]
    batch = pad_collate_fn(onnx_tokenizer, None)(items)
    assert batch["input_ids"].shape == (2, SEQ)


def test_slow_tokenizer_gets_the_fixed_length_and_warnings(tiny_tokenizer_dir: Path) -> None:
    slow = ONNXTokenizer(BertTokenizer(vocab_file=str(tiny_tokenizer_dir / "vocab.txt")), 1, SEQ)
    assert _shapes(slow([QUESTION, "who"], [SHORT, "hello"], return_tensors="np")) == {(2, SEQ)}
    with pytest.warns(FixedShapeWarning, match=f"Tokenized text 1 of the batch of length {LONG_TOKENS}"):
        encoding = slow(["hello", LONG])
    assert {len(row) for row in encoding["input_ids"]} == {SEQ}


def test_the_text_modality_wraps_only_text_tokenizers(tokenizer: BertTokenizerFast) -> None:
    registered: list = []
    plugin.register_modalities(register=registered.append)
    (text,) = registered
    dims = {"batch_size": 4, "sequence_length": 32}
    wrapped = text.wrap_processor(tokenizer, dims)
    assert isinstance(wrapped, ONNXTokenizer)
    assert (wrapped.wrapped, wrapped.batch_size, wrapped.sequence_length) == (tokenizer, 4, 32)
    assert text.wrap_processor(object(), dims) is None


# Property tests: any text, pair or list of them encodes to exactly (n, SEQ).
TEXTS = st.one_of(
    st.text(),
    st.text(alphabet=string.whitespace),
    st.lists(st.sampled_from(sorted(set(LONG.split()))), max_size=60).map(" ".join),
)
PAIRS = st.tuples(TEXTS, TEXTS)
PROPERTY = settings(max_examples=50, deadline=None)
ignore_truncation = pytest.mark.filterwarnings("ignore::modelexport_core.FixedShapeWarning")


@ignore_truncation
@PROPERTY
@given(text=TEXTS)
def test_any_text_has_the_fixed_shape(shared_tokenizer: ONNXTokenizer, text: str) -> None:
    assert _shapes(shared_tokenizer(text, return_tensors="np")) == {(1, SEQ)}


@ignore_truncation
@PROPERTY
@given(pair=PAIRS)
def test_any_pair_has_the_fixed_shape(shared_tokenizer: ONNXTokenizer, pair: tuple[str, str]) -> None:
    assert _shapes(shared_tokenizer(*pair, return_tensors="pt")) == {(1, SEQ)}


@ignore_truncation
@PROPERTY
@given(texts=st.lists(TEXTS, min_size=1, max_size=5))
def test_any_list_of_texts_has_the_fixed_shape(shared_tokenizer: ONNXTokenizer, texts: list[str]) -> None:
    assert _shapes(shared_tokenizer(texts, return_tensors="np")) == {(len(texts), SEQ)}


@ignore_truncation
@PROPERTY
@given(pairs=st.lists(PAIRS, min_size=1, max_size=5))
def test_any_list_of_pairs_has_the_fixed_shape(shared_tokenizer: ONNXTokenizer, pairs: list[tuple[str, str]]) -> None:
    first, second = map(list, zip(*pairs, strict=True))
    assert _shapes(shared_tokenizer(first, second, return_tensors="pt")) == {(len(pairs), SEQ)}
    assert {len(row) for row in shared_tokenizer(pairs)["input_ids"]} == {SEQ}


@PROPERTY
@given(texts=st.lists(TEXTS, min_size=1, max_size=5))
def test_warns_exactly_when_an_input_is_longer_than_the_fixed_length(
    shared_tokenizer: ONNXTokenizer, texts: list[str]
) -> None:
    longest = max(len(shared_tokenizer.wrapped(text)["input_ids"]) for text in texts)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shared_tokenizer(texts)
    messages = [str(w.message) for w in caught if issubclass(w.category, FixedShapeWarning)]
    if longest > SEQ:
        assert len(messages) == 1 and f"of length {longest} was truncated" in messages[0]
    else:
        assert messages == []


def test_a_stride_that_leaves_no_room_is_a_one_line_error(onnx_tokenizer: ONNXTokenizer) -> None:
    question_tokens = len(onnx_tokenizer.tokenize(QUESTION))
    room = SEQ - 3 - question_tokens  # [CLS] question [SEP] context [SEP]
    windows = onnx_tokenizer(QUESTION, LONG, truncation="only_second", stride=room - 1, return_overflowing_tokens=True)
    assert len(windows["input_ids"]) > 1 and {len(ids) for ids in windows["input_ids"]} == {SEQ}
    with pytest.raises(ValueError, match=rf"^stride {room} leaves no room .*: use a stride below {room}$"):
        onnx_tokenizer(QUESTION, LONG, truncation="only_second", stride=room, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match=rf"^stride {SEQ - 2} leaves no room"):
        onnx_tokenizer(LONG, stride=SEQ - 2, return_overflowing_tokens=True)
