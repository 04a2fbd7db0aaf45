"""Where the rows run: in this process (`local_batches`), or on Ray Data actors (`ray_batches`). Each yields
lists of output rows as they finish; the job writes them as shards."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from modelexport_core.errors import ModelExportError
from modelexport_core.run.predictor import Predictor

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class RayOptions:
    """`actors` Predictor actors of `cpus_per_actor` CPUs each, on the cluster at `address` (None: a local Ray
    started for the run). An actor killed mid-run is restarted and its batches retried: Ray Data's defaults
    for actor pools (`max_restarts=-1`, `max_task_retries=-1`), kept."""

    actors: int = 1
    cpus_per_actor: int = 1
    address: str | None = None


def local_batches(rows: Rows, predictor: dict[str, Any], shard_rows: int) -> Iterator[Rows]:
    """One Predictor in this process, `shard_rows` rows at a time."""
    model = Predictor(**predictor)
    for start in range(0, len(rows), shard_rows):
        yield model.predict_rows(rows[start : start + shard_rows])


def ray_batches(
    rows: Rows, predictor: dict[str, Any], shard_rows: int, options: RayOptions, udf: type = Predictor
) -> Iterator[Rows]:
    """Ray Data: the rows as a dataset, `map_batches(udf)` on an actor pool, the results streamed back."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=options.address, logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its progress bars and execution logs: ours instead
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    blocks = max(-(-len(rows) // shard_rows), options.actors)  # every actor gets work
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    answered = dataset.map_batches(
        udf,
        fn_constructor_kwargs={**predictor, "threads": options.cpus_per_actor},
        batch_size=-(-len(rows) // blocks),
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=options.actors),
        num_cpus=options.cpus_per_actor,
    )
    for block in answered.iter_batches(batch_size=None, batch_format="pyarrow"):
        yield block.to_pylist()


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ModelExportError("--engine ray needs Ray Data: pip install 'modelexport-core[ray]'") from None
    return ray
