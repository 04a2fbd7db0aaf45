"""`ONNXTokenizer`: a HF tokenizer whose every encoding has the ONNX model's fixed sequence length."""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from modelexport_core.serve.fixed import FixedShapeProcessor, warn_truncated

if TYPE_CHECKING:
    from transformers import BatchEncoding, PreTrainedTokenizerBase

# A fast tokenizer's Rust state (its truncation and padding) is set by every call that encodes: threads sharing
# a tokenizer take turns, or Rust refuses with "Already borrowed". Turns are short next to a model's run.
_TURN = threading.RLock()
F = TypeVar("F", bound=Callable[..., Any])


def one_at_a_time(method: F) -> F:
    """`method`, called while holding the tokenizers' turn."""

    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _TURN:
            return method(*args, **kwargs)

    return locked  # type: ignore[return-value]


def token_counts(tokenizer: Any, texts: list[str]) -> list[int]:
    """Each text's number of tokens, untruncated, from one batched call (of the plain tokenizer a wrapper holds)."""
    plain = getattr(tokenizer, "wrapped", tokenizer)
    with _TURN:
        return [len(ids) for ids in plain(texts, truncation=False, verbose=False)["input_ids"]]


# Truncation values that would let an encoding outgrow the fixed length; they become `True`.
_NO_TRUNCATION = (None, False, "do_not_truncate")
# The keywords that change which tokens an input yields: kept when measuring a truncated input.
_TOKENIZING_KWARGS = ("add_special_tokens", "is_split_into_words")


_PER_TOKEN_EXTRAS = (  # outputs the one-call path does not pad: with them a call tokenizes twice
    "stride",
    "return_overflowing_tokens",
    "return_offsets_mapping",
    "return_special_tokens_mask",
    "return_length",
)


def encoded_once(tokenizer: Any, texts: list[str], kwargs: dict[str, Any]) -> BatchEncoding:
    """`texts` tokenized in one call, unpadded (as lists): an ONNXTokenizer's truncated to its fixed length."""
    if isinstance(tokenizer, ONNXTokenizer):
        return tokenizer.unpadded(texts, **kwargs)
    return tokenizer(texts, **{**kwargs, "padding": False, "return_tensors": None})


def padded_rows(tokenizer: Any, encoding: BatchEncoding, rows: list[int], return_tensors: str) -> BatchEncoding | None:
    """The `rows` (indices) of an unpadded encoding (`encoded_once`), padded in numpy as the tokenizer pads a batch: an
    ONNXTokenizer to its bucket (else its fixed length), any other to the rows' longest. None when the encoding
    holds more than ids, token types and attention mask, or the tokenizer has no pad token."""
    pad_values = {"input_ids": tokenizer.pad_token_id, "attention_mask": 0}
    pad_values["token_type_ids"] = tokenizer.pad_token_type_id
    if tokenizer.pad_token_id is None or set(encoding) - set(pad_values):
        return None
    ids = [encoding["input_ids"][row] for row in rows]
    longest = max(map(len, ids), default=0)
    length = tokenizer.padded_length(longest) if isinstance(tokenizer, ONNXTokenizer) else longest
    left = tokenizer.padding_side == "left"
    padded = {
        key: _padded([values[r] for r in rows], length, pad_values[key], left) for key, values in encoding.items()
    }
    from transformers import BatchEncoding

    if return_tensors == "pt":
        import torch

        padded = {key: torch.from_numpy(array) for key, array in padded.items()}
    return BatchEncoding(padded)


def _padded(rows: list[list[int]], length: int, value: int, left: bool) -> np.ndarray:
    array = np.full((len(rows), length), value, dtype=np.int64)
    for index, row in enumerate(rows):
        target = array[index, length - len(row) :] if left else array[index, : len(row)]
        target[:] = row
    return array


def _is_batch(text: Any, is_split_into_words: bool) -> bool:
    """Whether `text` is a batch of inputs, decided as transformers decides it."""
    if not isinstance(text, (list, tuple)):
        return False
    return not is_split_into_words or (len(text) > 0 and isinstance(text[0], (list, tuple)))


class ONNXTokenizer(FixedShapeProcessor):
    """A tokenizer for a fixed-shape ONNX model: every encoding is exactly `sequence_length` tokens.

    Inputs are padded to the fixed length and truncated to it (with a `FixedShapeWarning` giving their
    length); everything else (decode, special tokens, `pad`, `save_pretrained`, ...) is the wrapped
    tokenizer's. `for_buckets(lengths)` gives one that pads each call to the smallest of a package's
    sequence lengths holding its longest input instead.
    """

    bucket_lengths: tuple[int, ...] = ()

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int,
        sequence_length: int,
        shape_source: str = "given",
    ) -> None:
        shapes = {"batch_size": batch_size, "sequence_length": sequence_length}
        super().__init__(tokenizer, shapes, shape_source)

    @property
    def sequence_length(self) -> int:
        """The fixed number of tokens of every encoding."""
        return self.shapes["sequence_length"]

    @property
    def model_max_length(self) -> int:
        """The fixed sequence length, which pipelines read to truncate and to size QA spans.

        Setting it does not change the fixed length (the ONNX graph does not accept another): the value goes
        to the wrapped tokenizer, so it is what `save_pretrained` writes, with a warning when it differs.
        """
        return self.sequence_length

    @model_max_length.setter
    def model_max_length(self, value: int) -> None:
        self.wrapped.model_max_length = value
        if value != self.sequence_length:
            warnings.warn(
                f"model_max_length stays {self.sequence_length}, the ONNX model's fixed sequence length; "
                f"{value} was set on the wrapped tokenizer only",
                stacklevel=3,
            )

    @property
    def max_len_single_sentence(self) -> int:
        """How many tokens of a single text fit in the fixed length beside the special tokens."""
        return self.sequence_length - self.wrapped.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        """How many tokens of a text pair fit in the fixed length beside the special tokens."""
        return self.sequence_length - self.wrapped.num_special_tokens_to_add(pair=True)

    def __len__(self) -> int:
        return len(self.wrapped)

    def for_buckets(self, lengths: list[int]) -> ONNXTokenizer:
        """This tokenizer, padding each call to the smallest of `lengths` (shape buckets, up to the fixed
        sequence length) that holds its longest input, so a batch runs on that bucket as it is."""
        tokenizer = ONNXTokenizer(self.wrapped, self.batch_size, self.sequence_length, self.shape_source)
        tokenizer.bucket_lengths = tuple(sorted(n for n in lengths if n < self.sequence_length))
        return tokenizer

    def __getattr__(self, name: str) -> Any:
        """The wrapped tokenizer's attribute; its methods take the tokenizers' turn (threads may share one)."""
        value = super().__getattr__(name)
        return one_at_a_time(value) if callable(value) and not isinstance(value, type) else value

    @one_at_a_time
    def __call__(self, text: Any = None, text_pair: Any = None, **kwargs: Any) -> BatchEncoding:
        """Tokenize as the wrapped tokenizer does, padded and truncated to exactly `sequence_length` tokens.

        The caller's padding and max_length are overridden; a truncation strategy it names (e.g. QA's
        "only_second") is kept, no truncation becomes `True`. Truncating warns, unless the caller asked for
        the overflowing tokens (a pipeline's stride then serves them as extra rows, also of the fixed length).
        """
        truncation = kwargs.get("truncation")
        kwargs.update(
            padding="max_length",
            max_length=self.sequence_length,
            pad_to_multiple_of=None,
            truncation=True if truncation in _NO_TRUNCATION else truncation,
        )
        if kwargs.get("stride") and kwargs.get("return_overflowing_tokens"):
            self._check_stride_fits(text, text_pair, kwargs)
        if self.bucket_lengths and text is not None:
            plain = self._plain_batch(text, text_pair, kwargs)
            if plain is not None:
                return plain
            kwargs["max_length"] = self._bucket_for(text, text_pair, kwargs)
        encoding = self.wrapped(text, text_pair, **kwargs)
        if text is not None and not kwargs.get("return_overflowing_tokens"):
            truncated = self._longest_truncated(text, text_pair, self._full_rows(encoding, kwargs), kwargs)
            if truncated is not None:
                warn_truncated(*truncated, self.sequence_length)
        return encoding

    def unpadded(self, texts: list[str], **kwargs: Any) -> BatchEncoding:
        """`texts` tokenized in one call, as lists, each truncated to the fixed length (a FixedShapeWarning names the
        longest truncated): `padded_rows` pads a batch of them to its bucket."""
        truncation = kwargs.get("truncation")
        kwargs.update(
            padding=False,
            max_length=self.sequence_length,
            return_tensors=None,
            truncation=True if truncation in _NO_TRUNCATION else truncation,
        )
        with _TURN:
            encoding = self.wrapped(texts, **kwargs)
            full = [i for i, ids in enumerate(encoding["input_ids"]) if len(ids) >= self.sequence_length]
            truncated = self._longest_truncated(texts, None, full, kwargs)
        if truncated is not None:
            warn_truncated(*truncated, self.sequence_length)
        return encoding

    def padded_length(self, tokens: int) -> int:
        """The length a batch whose longest encoding has `tokens` tokens is padded to: the smallest bucket holding
        it, else the fixed length."""
        return next((n for n in self.bucket_lengths if n >= tokens), self.sequence_length)

    def _plain_batch(self, text: Any, text_pair: Any, kwargs: dict[str, Any]) -> BatchEncoding | None:
        """A plain batch of texts as arrays (numpy or torch), tokenized once and padded in numpy to its bucket; None
        where that does not apply (pairs, strides, extra outputs: those tokenize to measure and then to pad)."""
        plain = _is_batch(text, False) and text_pair is None and not kwargs.get("is_split_into_words")
        extras = any(kwargs.get(key) for key in _PER_TOKEN_EXTRAS)
        if not plain or extras or kwargs.get("return_tensors") not in ("np", "pt"):
            return None
        encoding = self.unpadded(text, **kwargs)
        return padded_rows(self, encoding, list(range(len(text))), kwargs["return_tensors"])

    def _bucket_for(self, text: Any, text_pair: Any, kwargs: dict[str, Any]) -> int:
        """The smallest bucket length holding the longest encoding of the call (truncated to the fixed length)
        and leaving room for the stride, if any, beside the special tokens."""
        unpadded = self.wrapped(text, text_pair, **{**kwargs, "padding": "longest", "return_tensors": None})
        ids = unpadded["input_ids"]
        longest = max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)
        needed = max(
            longest, kwargs.get("stride", 0) + self.wrapped.num_special_tokens_to_add(pair=text_pair is not None) + 1
        )
        return self.padded_length(needed)

    def _check_stride_fits(self, text: Any, text_pair: Any, kwargs: dict[str, Any]) -> None:
        """Refuse a stride that leaves no room for new tokens in the windows of an input that overflows
        (the Rust tokenizer would panic)."""
        pair = text_pair is not None
        batched = _is_batch(text, kwargs.get("is_split_into_words", False))
        special = self.wrapped.num_special_tokens_to_add(pair=pair)
        lengths = [self._lengths(side, batched, kwargs) for side in ((text, text_pair) if pair else (text,))]
        kept = {"only_second": 0, "only_first": 1}.get(kwargs["truncation"]) if pair else None
        for row in zip(*lengths, strict=False):
            if sum(row) + special <= self.sequence_length:
                continue  # fits in one window: no stride needed
            room = self.sequence_length - special - (row[kept] if kept is not None else 0)
            if kwargs["stride"] >= room:
                beside = " and the untruncated text" if kept is not None else ""
                raise ValueError(
                    f"stride {kwargs['stride']} leaves no room in the fixed {self.sequence_length} tokens "
                    f"({max(room, 0)} left beside the special tokens{beside}): use a stride below {max(room, 1)}"
                )

    def _lengths(self, side: Any, batched: bool, kwargs: dict[str, Any]) -> list[int]:
        """Token counts (without special tokens) of one side of the inputs."""
        measure = {key: kwargs[key] for key in _TOKENIZING_KWARGS if key in kwargs and key != "add_special_tokens"}
        ids = self.wrapped(side if batched else [side], add_special_tokens=False, **measure)["input_ids"]
        return [len(row) for row in ids]

    def _full_rows(self, encoding: BatchEncoding, kwargs: dict[str, Any]) -> list[int]:
        """The rows of a padded encoding that may have been truncated: those without padding (by the attention mask
        where there is one: a pad token may also be the end token, as CLIP's), and only when the encoding has the
        fixed length (a bucket's is shorter)."""
        if kwargs["max_length"] < self.sequence_length:
            return []
        if "attention_mask" in encoding:
            mask = np.asarray(encoding["attention_mask"]).reshape(-1, self.sequence_length)
            unpadded = mask.all(axis=1)
        else:
            ids = np.asarray(encoding["input_ids"]).reshape(-1, self.sequence_length)
            pad = self.wrapped.pad_token_id
            unpadded = (ids[:, 0] != pad) & (ids[:, -1] != pad)
        return [int(i) for i in np.flatnonzero(unpadded)]

    def _longest_truncated(
        self, text: Any, text_pair: Any, full: list[int], kwargs: dict[str, Any]
    ) -> tuple[str, int] | None:
        """Name and untruncated length of the longest input that was truncated, if any, of the rows `full` (those
        that may have been: only they are tokenized again)."""
        if not full:
            return None
        batched = _is_batch(text, kwargs.get("is_split_into_words", False))
        if batched:
            text = [text[i] for i in full]
            text_pair = None if text_pair is None else [text_pair[i] for i in full]
        measure = {key: kwargs[key] for key in _TOKENIZING_KWARGS if key in kwargs}
        untruncated = self.wrapped(text, text_pair, truncation=False, verbose=False, **measure)["input_ids"]
        lengths = dict(zip(full, map(len, untruncated) if batched else [len(untruncated)], strict=True))
        over = {i: length for i, length in lengths.items() if length > self.sequence_length}
        if not over:
            return None
        longest = max(over, key=over.__getitem__)
        if not batched:
            return "Tokenized text", over[longest]
        others = f" (the longest of {len(over)} truncated)" if len(over) > 1 else ""
        return f"Tokenized text {longest} of the batch{others}", over[longest]
