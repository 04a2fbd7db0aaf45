"""`Predictor`: one `create_pipeline` over a package, turning batches of rows into rows of answers. The local
engine calls it shard by shard; Ray Data runs it as a callable-class UDF, one per actor:

    ds.map_batches(Predictor, fn_constructor_kwargs={"package": "out/minilm"}, concurrency=4, batch_size=64)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

from modelexport_core.errors import FixedShapeWarning, ModelExportError, one_line
from modelexport_core.package.layout import find_model_file, package_task
from modelexport_core.package.shapes import detect_shapes
from modelexport_core.plugins.manager import get_modality
from modelexport_core.run.answers import answer_columns
from modelexport_core.run.table import ROW_NUMBER, arrow_table

Row = dict[str, Any]


class Predictor:
    """Rows in ({id column, input column}), rows out: the id, the input unless `drop_input`, the answer's columns
    (`answers.answer_columns`) and `error` (None, or one line saying why this row has no answer: no value, an
    empty text, an unreadable file). A bad row never stops the others. `pipeline_args` go to every pipeline call
    (top_k, candidate_labels, ...); `pipeline_options` to `create_pipeline` (use_buckets, sort_by_length, target,
    session_options); `threads` caps onnxruntime's intra-op threads (one per CPU an actor holds)."""

    def __init__(
        self,
        package: str,
        task: str | None = None,
        column: str | None = None,
        id_column: str | None = None,
        drop_input: bool = False,
        pipeline_args: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
        **pipeline_options: Any,
    ) -> None:
        from modelexport_core.serve.pipeline import create_pipeline

        model_file = find_model_file(package)
        detected = detect_shapes(model_file)
        self.modality = get_modality(detected.modality)
        self.column = column or self.modality.input_column
        self.id_column = id_column or ROW_NUMBER
        self.drop_input = drop_input
        self.pipeline_args = dict(pipeline_args or {})
        self.batch_size = batch_size or detected.shapes.get("batch_size", 1)
        if threads:
            pipeline_options["session_options"] = _threads(threads)
        self.pipe = create_pipeline(task or package_task(model_file.parent), package, **pipeline_options)

    def __call__(self, batch: Any) -> Any:
        """A Ray Data batch (pyarrow table, pandas frame or dict of columns) -> a pyarrow table of output rows."""
        return arrow_table(self.predict_rows(_rows(batch)))

    def predict_rows(self, rows: list[Row]) -> list[Row]:
        """Every row's output row, in order."""
        inputs: dict[int, Any] = {}
        errors: dict[int, str] = {}
        for index, row in enumerate(rows):
            try:
                inputs[index] = self._read(row.get(self.column))
            except Exception as err:  # a bad row gets its reason; the others go on
                errors[index] = one_line(err)
        answers = self._answers(inputs, errors)
        return [self._output(row, answers.get(index), errors.get(index)) for index, row in enumerate(rows)]

    def _read(self, value: Any) -> Any:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise ModelExportError(f"no {self.column}")
        return self.modality.read_input(str(value))

    def _answers(self, inputs: dict[int, Any], errors: dict[int, str]) -> dict[int, Any]:
        """The pipeline's answers over all inputs at once; if that fails, input by input (the failing ones get
        their error). Truncation to the package's length is silent here: a run would warn once per batch."""
        if not inputs:
            return {}
        with warnings.catch_warnings():  # inputs longer than the package are truncated to it, batch after batch
            warnings.simplefilter("ignore", FixedShapeWarning)
            try:
                answers = self.pipe(list(inputs.values()), batch_size=self.batch_size, **self.pipeline_args)
                return dict(zip(inputs, answers, strict=True))
            except Exception:  # some input broke the batch: find which
                pass
            found = {}
            for index, value in inputs.items():
                try:
                    found[index] = self.pipe([value], batch_size=1, **self.pipeline_args)[0]
                except Exception as err:
                    errors[index] = one_line(err)
            return found

    def _output(self, row: Row, answer: Any, error: str | None) -> Row:
        kept = [self.id_column] if self.drop_input else [self.id_column, self.column]
        output = {name: row.get(name) for name in kept}
        if error is None:
            output.update(answer_columns(answer, set(kept) | {"error"}))
        output["error"] = error
        return output


def _rows(batch: Any) -> list[Row]:
    if hasattr(batch, "to_pylist"):  # pyarrow
        return batch.to_pylist()
    if hasattr(batch, "to_dict"):  # pandas
        return batch.to_dict("records")
    columns = {name: values.tolist() if hasattr(values, "tolist") else list(values) for name, values in batch.items()}
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _threads(count: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = count
    return options
