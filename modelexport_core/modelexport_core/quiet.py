"""Keeping the libraries' chatter (logs, warnings, console output) away from the user's screen."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quieted(*loggers: str, level: int = logging.ERROR, stdout: bool = False, stderr: bool = False) -> Iterator[None]:
    """Hold the named loggers at `level`, ignore warnings, and swallow stdout / stderr when asked.

    Errors still propagate; everything is restored on exit.
    """
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(level)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
            if stdout:
                stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            if stderr:
                stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
            yield
    finally:
        for name, previous in saved.items():
            logging.getLogger(name).setLevel(previous)
