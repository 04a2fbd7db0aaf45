"""A realistic benchmark workload built offline: real English sentences from the standard library's docstrings."""

from __future__ import annotations

import functools
import importlib
import inspect
import random
import re
from collections.abc import Iterator
from types import ModuleType

MODULES = (
    "argparse", "asyncio", "calendar", "collections", "configparser", "csv", "dataclasses", "datetime",
    "decimal", "difflib", "email.message", "enum", "functools", "gzip", "hashlib", "heapq", "http.client",
    "inspect", "itertools", "json", "logging", "pathlib", "pickle", "random", "shutil", "socket", "sqlite3",
    "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "typing", "unittest",
    "urllib.request", "zipfile",
)  # fmt: skip
CORPUS_SIZE = 320
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_CODE = re.compile(r"[=<>{}\[\]_`|*\\/#%@~^$]|\.\.\.|\w\.\w|\(\)")  # markup, identifiers, paths, calls


def _docstrings(module: ModuleType) -> Iterator[str]:
    """The docstrings of a module, its public functions and classes, and their public members, in name order."""
    yield inspect.getdoc(module) or ""
    for name, value in sorted(vars(module).items()):
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        yield inspect.getdoc(value) or ""
        if inspect.isclass(value):
            yield from (inspect.getdoc(m) or "" for n, m in sorted(vars(value).items()) if not n.startswith("_"))


def _is_prose(sentence: str) -> bool:
    """A plain English sentence of 4 to 60 words: no code, markup or identifiers."""
    words = sentence.split()
    if not (4 <= len(words) <= 60 and sentence[0].isupper() and sentence.endswith(".")) or _CODE.search(sentence):
        return False
    return sum(word.strip(".,;:()'\"-").isalpha() for word in words) >= 0.85 * len(words)


@functools.cache
def corpus_sentences(size: int = CORPUS_SIZE) -> tuple[str, ...]:
    """`size` distinct sentences (median about 10 words), the same on every run of a given Python version."""
    sentences = [
        sentence
        for name in MODULES
        for doc in _docstrings(importlib.import_module(name))
        for paragraph in doc.split("\n\n")
        for sentence in _SENTENCE_END.split(" ".join(paragraph.split()))
        if _is_prose(sentence)
    ]
    unique = list(dict.fromkeys(sentences))
    random.Random(0).shuffle(unique)
    return tuple(unique[:size])
