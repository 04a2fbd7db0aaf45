"""The shards a run writes as it goes, beside OUTPUT: what makes a run resumable and Ctrl-C harmless.

`.OUTPUT.shards/` holds one Parquet file per finished batch of output rows, each written whole (to a temporary
name, then renamed), so an interrupted run leaves only complete shards. `--resume` skips the ids they hold; at
the end the shards are joined into OUTPUT in the input's order (written whole too) and removed. Shards and the
join stay in Arrow: vectors never pass through Python objects on their way to a Parquet OUTPUT.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.run.table import arrow_table, write_table


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

    def finished_ids(self) -> set[Any]:
        """The ids of every complete shard."""
        import pyarrow.parquet

        return {
            row_id
            for shard in self._complete()
            for row_id in pyarrow.parquet.read_table(shard, columns=[self.id_column]).column(0).to_pylist()
        }

    def write(self, rows: list[dict[str, Any]]) -> None:
        """One more shard, whole or not at all."""
        import pyarrow.parquet

        number = len(self._complete())
        partial = self.directory / f".shard-{number:06d}.partial"
        pyarrow.parquet.write_table(arrow_table(rows), partial)
        os.replace(partial, self.directory / f"shard-{number:06d}.parquet")

    def join(self, order: Sequence[Any]) -> Any:
        """Write OUTPUT from the shards, one row per id of `order` in that order, then remove them; the table."""
        import pyarrow
        import pyarrow.parquet

        shards = [pyarrow.parquet.read_table(shard) for shard in self._complete()]
        table = pyarrow.concat_tables(shards, promote_options="permissive")  # an all-error shard lacks answers
        position = {row_id: index for index, row_id in enumerate(table.column(self.id_column).to_pylist())}
        missing = [row_id for row_id in order if row_id not in position]
        if missing:
            raise ModelExportError(f"The run finished without rows for {len(missing)} ids (first: {missing[0]!r})")
        table = table.take([position[row_id] for row_id in order])
        partial = self.output.with_name(f".{self.output.name}.partial{self.output.suffix}")
        write_table(table, partial)
        os.replace(partial, self.output)
        shutil.rmtree(self.directory)
        return table

    def discard_if_empty(self) -> bool:
        """Remove the shard directory if no shard was finished (a run that did no work leaves nothing); whether
        it did."""
        if self._complete():
            return False
        shutil.rmtree(self.directory, ignore_errors=True)
        return True

    def _complete(self) -> list[Path]:
        return sorted(self.directory.glob("shard-*.parquet"))
