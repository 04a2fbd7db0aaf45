"""A run's progress on stderr: a rich bar with rows/s and ETA on a terminal, a plain line every 10 s otherwise."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TextIO

PLAIN_EVERY_SECONDS = 10.0


@contextlib.contextmanager
def progress_reporter(total: int, done: int, stream: TextIO) -> Iterator[Callable[[int], None]]:
    """Yield `advance(rows)`; `done` rows were finished by an earlier run."""
    if stream.isatty():
        with _bar(total, done, stream) as advance:
            yield advance
        return
    yield _plain_lines(total, done, stream)


@contextlib.contextmanager
def _bar(total: int, done: int, stream: TextIO) -> Iterator[Callable[[int], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("rows"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} rows/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=stream)) as progress:
        task = progress.add_task("rows", total=total, completed=done, rate="-")
        start, counted = time.perf_counter(), 0

        def advance(rows: int) -> None:
            nonlocal counted
            counted += rows
            rate = counted / max(time.perf_counter() - start, 1e-9)
            progress.update(task, advance=rows, rate=f"{rate:.0f}")

        yield advance


def _plain_lines(total: int, done: int, stream: TextIO) -> Callable[[int], None]:
    start = last = time.perf_counter()
    counted = 0

    def advance(rows: int) -> None:
        nonlocal counted, last
        counted += rows
        now = time.perf_counter()
        if now - last >= PLAIN_EVERY_SECONDS or done + counted == total:
            rate = counted / max(now - start, 1e-9)
            left = (total - done - counted) / rate if rate else 0.0
            print(f"> {done + counted}/{total} rows, {rate:.0f} rows/s, ETA {left:.0f} s", file=stream, flush=True)
            last = now

    return advance
