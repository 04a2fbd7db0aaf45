"""The rows of a batch job: reading JSONL, CSV or Parquet, and writing JSONL or Parquet, by file suffix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelexport_core.errors import ModelExportError

INPUT_FORMATS = (".jsonl", ".csv", ".parquet")
OUTPUT_FORMATS = (".jsonl", ".parquet")
ROW_NUMBER = "id"  # the id column when the input names none: each row's number, from 0


def _format(path: Path, formats: tuple[str, ...], what: str) -> str:
    if path.suffix not in formats:
        raise ModelExportError(f"{what} {path} must end with {', '.join(formats)}")
    return path.suffix


def read_rows(path: Path, column: str, id_column: str | None) -> list[dict[str, Any]]:
    """Every row of the input as {id column (`id`, the row number, when none is named): id, column: value} (None
    where a row lacks the value); a user error when the file cannot be read or has no such column (or id column)."""
    suffix = _format(path, INPUT_FORMATS, "INPUT")
    table = _read_table(path, suffix)
    for name in (column, id_column):
        if name is not None and name not in table.column_names:
            raise ModelExportError(f"{path} has no column {name!r}; its columns: {', '.join(table.column_names)}")
    values = table.column(column).to_pylist()
    ids = table.column(id_column).to_pylist() if id_column else list(range(len(values)))
    if len(set(ids)) != len(ids):
        raise ModelExportError(f"{path}: the id column {id_column!r} holds the same id twice")
    id_key = id_column or ROW_NUMBER
    return [{id_key: row_id, column: value} for row_id, value in zip(ids, values, strict=True)]


def _read_table(path: Path, suffix: str) -> Any:
    import pyarrow.csv
    import pyarrow.json
    import pyarrow.parquet

    readers = {".jsonl": pyarrow.json.read_json, ".csv": pyarrow.csv.read_csv, ".parquet": pyarrow.parquet.read_table}
    if not path.is_file():
        raise ModelExportError(f"Input file not found: {path}")
    try:
        return readers[suffix](path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise ModelExportError(f"Cannot read {path} as {suffix[1:]}: {str(err).splitlines()[0]}") from None


def arrow_table(rows: list[dict[str, Any]]) -> Any:
    """Rows as an Arrow table with every key any row has (None where a row lacks it: an error row's answer)."""
    import pyarrow

    keys = list(dict.fromkeys(key for row in rows for key in row))
    return pyarrow.table({key: [row.get(key) for row in rows] for key in keys})


def write_table(table: Any, path: Path) -> None:
    """An Arrow table as Parquet, or as JSONL (one object per line), by `path`'s suffix."""
    if _format(path, OUTPUT_FORMATS, "OUTPUT") == ".parquet":
        import pyarrow.parquet

        pyarrow.parquet.write_table(table, path)
        return
    with path.open("w") as handle:
        for batch in table.to_batches():
            for row in batch.to_pylist():
                handle.write(json.dumps(row) + "\n")
