"""`Modality`: the object a plugin registers for each kind of input it serves; its methods carry the behaviour.

Core looks a package's modality up once (by the name the package records, else by its input names) and asks
it everything that differs between modalities: the names of its dims, their defaults, its preprocessor files,
its processor and wrapper, its pipeline classes, how long a raw input is, samples and a corpus. Core itself
knows no modality by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from modelexport_core.errors import ModelExportError

InputShapes = Mapping[str, Sequence[int | None]]
Dims = dict[str, int]


class Modality:
    """Subclass it, set the class attributes, override what your inputs need, and register an instance.

    Class attributes:
    - `name`: recorded in every package (`modelexport.modality`), e.g. "text".
    - `tasks`: the pipeline tasks it serves.
    - `input_names`: ONNX input names that identify it (the modality whose names are all present and are the
      most numerous wins: `input_ids` + `bbox` is a document, `input_ids` alone text).
    - `dim_names`: the named dims an export takes for it (`batch_size`, `sequence_length`, `height`, ...).
    - `length_dim`: the dim a raw input's length maps to (text: tokens on `sequence_length`); it may take a
      list of sizes at export (shape buckets) and calls are sorted by it. None: inputs have no length.
    - `mask_input`: the input whose non-zero entries mark the real positions along `length_dim` (right padding).
    - `task_aliases`: pipeline tasks served by the export of another task.
    - `embedding_tasks`: tasks whose outputs are vectors (the int8 gate compares them by cosine, not top-1).
    - `input_column`: the column `modelexport run` reads its inputs from by default (texts, image paths, ...).
    """

    name: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ()
    input_names: ClassVar[tuple[str, ...]] = ()
    dim_names: ClassVar[tuple[str, ...]] = ("batch_size",)
    length_dim: ClassVar[str | None] = None
    mask_input: ClassVar[str | None] = None
    task_aliases: ClassVar[Mapping[str, str]] = {}
    embedding_tasks: ClassVar[tuple[str, ...]] = ()
    input_column: ClassVar[str] = "text"

    def name_dims(self, input_shapes: InputShapes) -> dict[str, int | None]:
        """The named dims of a model's inputs (None where dynamic), e.g. {"batch_size": 2, "sequence_length": 16}."""
        raise NotImplementedError(f"{type(self).__name__} must name the dims of its inputs")

    def default_dims(self, package_dir: Path) -> Dims:
        """Fallback sizes of dynamic dims (may read the package's preprocessor files); batch_size defaults to 1."""
        return {}

    def fit_dims(self, dims: Dims, config: Any, explicit: set[str]) -> Dims:
        """The dims to export at, checked against the model's config: cap a default, refuse an explicit misfit."""
        return dims

    def save_preprocessor(self, source: str, out_dir: Path, hub_kwargs: Mapping[str, Any]) -> None:
        """Write the files the processor loads from (tokenizer, preprocessor_config.json) into `out_dir`."""

    def load_processor(self, directory: str, trust_remote_code: bool = False) -> Any:
        """The HF tokenizer / processor saved in `directory` (a package, a model directory, or a Hub id); pass
        `trust_remote_code` on to transformers, so that a processor's own code never runs unasked."""
        raise NotImplementedError(f"{type(self).__name__} does not load a processor")

    def wrap_processor(self, processor: Any, dims: Mapping[str, int]) -> Any | None:
        """`processor` wrapped to make inputs of these fixed dims (a FixedShapeProcessor), or None if it cannot."""
        return None

    def pipeline_class(self, task: str) -> type | None:
        """A Pipeline subclass for `task` where the stock one needs help with fixed shapes; None for the stock one."""
        return None

    def input_lengths(self, items: Sequence[Any], processor: Any) -> list[int] | None:
        """Each raw input's length along `length_dim` (tokens, samples), or None when they cannot be measured."""
        return None

    def read_input(self, value: str) -> Any:
        """A raw input from a command-line or table value (`compare --text`, `modelexport run`): the text itself
        by default (an empty one is a user error); a modality whose inputs are files reads the file (a user
        error naming it when it cannot)."""
        if not value.strip():
            raise ModelExportError("empty text")
        return value

    def sample_inputs(self, dims: Mapping[str, int]) -> dict[str, list[Any]]:
        """Named sets of realistic raw inputs for `modelexport benchmark` (e.g. short and full-length texts)."""
        return {}

    def benchmark_kwargs(self, task: str) -> dict[str, dict[str, Any]]:
        """Keywords the benchmark passes with a task's inputs: {"pipeline": {...}, "processor": {...}}."""
        return {}

    def corpus(self) -> list[Any]:
        """A realistic, deterministic workload of raw inputs of varied size: benchmarks and int8 calibration."""
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def copy_pretrained(
    load: Callable[..., Any], source: str, out_dir: Path, hub_kwargs: Mapping[str, Any], what: str
) -> None:
    """Load a HF `what` (tokenizer, processor, ...) from `source` with `load` and save it into `out_dir`; a user
    error saying what to save beside the model when the source has none (for `Modality.save_preprocessor`)."""
    try:
        loaded = load(source, **hub_kwargs)
    except (OSError, ValueError, TypeError) as err:
        raise ModelExportError(
            f"{source} has no usable {what} files: save the {what} beside the model ({what}.save_pretrained)"
        ) from err
    loaded.save_pretrained(out_dir)
