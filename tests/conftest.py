"""Shared fixtures: tiny artifacts built locally, so no test needs the Hub."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

TINY_WORDS = (
    "the quick brown fox jumps over lazy dog hello world what is where who how this that "
    "text model export fixed shape question answer context token length"
).split()
# WordPiece vocabulary: special tokens, whole words, letters and "##" letters (any lowercase ASCII word
# splits into pieces instead of [UNK]), punctuation.
TINY_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + TINY_WORDS
    + list(string.ascii_lowercase)
    + [f"##{letter}" for letter in string.ascii_lowercase]
    + list(".,?!'")
)


def write_tiny_tokenizer(directory: Path) -> Path:
    """Save a tiny lowercase WordPiece `BertTokenizerFast` (model_max_length 512) in `directory`."""
    from transformers import BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(vocab_file), model_max_length=512).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a saved tiny BertTokenizerFast (see `write_tiny_tokenizer`)."""
    return write_tiny_tokenizer(tmp_path_factory.mktemp("tiny_tokenizer"))
