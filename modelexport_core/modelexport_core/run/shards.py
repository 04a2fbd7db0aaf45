"""The shards a run writes as it goes, beside OUTPUT: what makes a run resumable and Ctrl-C harmless.

`.OUTPUT.shards/` holds one JSONL file per finished batch of output rows, each written whole (to a temporary
name, then renamed), so an interrupted run leaves only complete shards. `--resume` skips the ids they hold; at
the end the shards are joined into OUTPUT in the input's order (written whole too) and removed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.run.table import read_jsonl, write_rows


class Shards:
    """The shard directory of `output`, read and written by the run that owns it."""

    def __init__(self, output: Path, id_column: str) -> None:
        self.output = output
        self.directory = output.with_name(f".{output.name}.shards")
        self.id_column = id_column

    def claim(self, resume: bool, force: bool) -> None:
        """Refuse an existing OUTPUT or unfinished run unless told what to do with it; start over on `force`."""
        if force:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.output.unlink(missing_ok=True)
        if self.output.exists():
            raise ModelExportError(f"{self.output} exists: pass --force to replace it")
        if self.directory.exists() and not resume:
            raise ModelExportError(
                f"An interrupted run left {self.directory}: pass --resume to finish it or --force to start over"
            )
        self.directory.mkdir(parents=True, exist_ok=True)

    def finished(self) -> list[dict[str, Any]]:
        """The rows of every complete shard."""
        return [row for shard in sorted(self.directory.glob("shard-*.jsonl")) for row in read_jsonl(shard)]

    def write(self, rows: list[dict[str, Any]]) -> None:
        """One more shard, whole or not at all."""
        number = len(list(self.directory.glob("shard-*.jsonl")))
        partial = self.directory / f".shard-{number:06d}.partial.jsonl"
        write_rows(rows, partial)
        os.replace(partial, self.directory / f"shard-{number:06d}.jsonl")

    def join(self, order: Sequence[Any]) -> list[dict[str, Any]]:
        """Write OUTPUT from the shards, one row per id of `order` in that order, then remove them."""
        by_id = {row[self.id_column]: row for row in self.finished()}
        missing = [row_id for row_id in order if row_id not in by_id]
        if missing:
            raise ModelExportError(f"The run finished without rows for {len(missing)} ids (first: {missing[0]!r})")
        rows = [by_id[row_id] for row_id in order]
        partial = self.output.with_name(f".{self.output.name}.partial{self.output.suffix}")
        write_rows(rows, partial)
        os.replace(partial, self.output)
        shutil.rmtree(self.directory)
        return rows
