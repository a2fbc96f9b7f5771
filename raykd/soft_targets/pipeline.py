"""The soft-target stage: stream inputs through a teacher actor pool into a part-file directory.

Exactly once, also across failures:

- Each batch becomes one Parquet part named by a hash of its ids, written whole or not at all (a
  renamed temp file on disk, one upload on object storage: `raykd.storage`), so a killed writer
  leaves no partial part, and a batch that Ray retries after an
  actor dies (Ray Data restarts map actors and retries their tasks by default) lands on the same
  name instead of adding rows.
- A rerun after the driver died removes the ids already written from the inputs with a
  distributed anti-join and sends only the missing ones through the teachers; parts of another
  teacher or format in the directory are refused.
- At the end `tally_ids` proves that every input id is in exactly one row.

None of this holds ids on the driver: the ids are counted, joined and checked by Ray tasks
(`store.tally_ids`, `store.drop_written`), and the driver gets counts and a few example ids.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from raykd import storage
from raykd.soft_targets.actor import PRECISIONS, TeacherActor
from raykd.soft_targets.encoders import PartEncoder, TopKEncoder
from raykd.soft_targets.schema import SoftTargetMeta, check_k
from raykd.soft_targets.sizing import plan_pool
from raykd.soft_targets.store import (
    COMPRESSIONS,
    check_compatible,
    drop_written,
    list_parts,
    remove_temp_files,
    tally_ids,
)
from raykd.teachers.base import Requirements, Teacher

__all__ = ["SoftTargetRun", "generate_parts", "generate_soft_targets", "check_inputs"]


@dataclass(frozen=True)
class SoftTargetRun:
    path: str
    rows: int
    new_rows: int
    parts: int
    seconds: float


def check_inputs(inputs, columns: tuple[str, ...]) -> None:
    """Errors naming what is missing, before the teachers start."""
    import pyarrow as pa

    if not hasattr(inputs, "schema") or not hasattr(inputs, "map_batches"):
        raise TypeError(
            f"inputs must be a Ray Dataset with columns {list(columns)}, got {type(inputs).__name__}; "
            "wrap arrays with ray.data.from_numpy/from_arrow or use raykd.data.read_inputs"
        )
    schema = inputs.schema()
    if schema is None:
        raise ValueError("inputs are empty (no rows, no schema); there is nothing to make soft targets for")
    names = list(schema.names)
    if "id" not in columns:
        raise ValueError(f"columns must include 'id' (outputs are keyed by it), got {list(columns)}")
    if "id" not in names:
        raise ValueError(
            f"inputs have no 'id' column (columns: {names}); soft targets are keyed by id, so every input "
            "row needs a unique integer id: add one, or read the data with raykd.data.read_inputs(--id-column)"
        )
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"inputs lack columns {missing} that the encoder needs (columns: {names})")
    id_type = schema.types[names.index("id")]
    if isinstance(id_type, pa.DataType) and not pa.types.is_integer(id_type):
        raise ValueError(f"input column 'id' must hold integers, got {id_type}")


def generate_parts(
    inputs,
    teacher_factory: Callable[[], Teacher],
    encoder: PartEncoder,
    out_dir: str | Path,
    *,
    batch_size: int = 256,
    pool_size: int = 1,
    num_cpus: float = 0.5,
    num_gpus: float = 0.0,
    columns: tuple[str, ...] = ("id", "x"),
    device: str = "auto",
    threads: int | None = None,
    precision: str = "auto",
    compression: str = "zstd",
    max_concurrent_calls: int = 2,
    requirements: Requirements | None = None,
) -> SoftTargetRun:
    """Runs `encoder` on every id of `inputs` (a Ray Dataset with `id`, `x`) exactly once.

    Ids already present in `out_dir` from an earlier, interrupted run are skipped; a directory
    holding another teacher's or format's parts is refused. Fractional `num_cpus` keeps CPUs free
    for the read tasks. `columns` are the input columns the encoder sees.

    Throughput knobs (measured in `benchmarks/soft_targets.py`): `threads` sets torch's threads in
    each CPU actor (default: the node's cores divided by `pool_size`, since Ray would otherwise give
    a fractional-CPU actor one thread); `precision` "auto" runs bf16 autocast on CUDA and fp32 on
    CPU; `compression` of the Parquet parts ("zstd", "lz4", "snappy", "none");
    `max_concurrent_calls` (default 2) lets an actor take the next batch off Ray Data and write the
    last one's Parquet part while the teacher runs (the forward itself stays one at a time, under a
    lock): on 2 CPU cores that was worth ~10% over 1, and it keeps a GPU busy between batches.
    Inputs that are not materialised are read more than once: their ids for the row count and the
    id tallies before and after, the rows for the teachers. `requirements` (the teacher's) raise
    each actor's resources to what one replica needs; a pool the cluster cannot hold is refused
    first (`sizing.plan_pool`).
    """
    import ray.data
    from ray.data.dataset import MaterializedDataset

    if batch_size < 1 or pool_size < 1 or max_concurrent_calls < 1:
        raise ValueError(
            f"batch_size, pool_size and max_concurrent_calls must be >= 1, got {batch_size}, {pool_size}, {max_concurrent_calls}"
        )
    if precision not in PRECISIONS:
        raise ValueError(f"soft_targets.precision must be one of {PRECISIONS}, got {precision!r}")
    if compression not in COMPRESSIONS:
        raise ValueError(f"soft_targets.compression must be one of {COMPRESSIONS}, got {compression!r}")
    pool_size, num_cpus, num_gpus = plan_pool(requirements, pool_size, num_cpus, num_gpus)
    start = time.perf_counter()
    check_inputs(inputs, tuple(columns))
    storage.make_dir(out_dir)
    check_compatible(out_dir, encoder.metadata)
    remove_temp_files(out_dir)
    expected = inputs.select_columns(["id"])
    expected_rows = expected.count()
    before = tally_ids(expected, out_dir, expected_rows)
    if before.input_duplicates:
        raise ValueError(
            f"input ids are not unique ({before.input_duplicates} ids appear more than once, e.g. "
            f"{before.examples['input_duplicates']}); outputs are keyed by id, so each id must appear once"
        )
    # A rerun whose every id is already written starts no teacher at all.
    if before.written and not before.missing:
        return SoftTargetRun(str(out_dir), before.check(out_dir), 0, len(list_parts(out_dir)), time.perf_counter() - start)
    if before.written:
        # The ids already written leave the inputs by a hash anti-join in Ray tasks, before the
        # actors hold CPUs (its tasks take whole CPUs); the rest waits in the object store.
        inputs = drop_written(inputs, out_dir, expected_rows)
    if pool_size > 1 and isinstance(inputs, MaterializedDataset) and inputs.num_blocks() < pool_size:
        # Ray Data hands an actor whole blocks: inputs of one block (the embedded digits) would keep
        # every actor but one idle. Split into blocks of a batch now, before the actors hold CPUs.
        inputs = inputs.repartition(target_num_rows_per_block=batch_size).materialize()
    # A fraction of a CPU: the projection runs beside teacher actors that may hold most of a
    # node's CPUs (one actor per 1-CPU node), where a 1-CPU task would never start.
    todo = inputs.select_columns(list(columns), num_cpus=0.25)
    concurrent = max_concurrent_calls > 1
    written = todo.map_batches(
        TeacherActor,
        fn_constructor_kwargs={
            "teacher_factory": teacher_factory,
            "encoder": encoder,
            "out_dir": str(out_dir),  # a URI stays one: each actor resolves it
            "device": device,
            "threads": threads,
            "precision": precision,
            "compression": compression,
            "replicas_per_node": pool_size,
        },
        compute=ray.data.ActorPoolStrategy(
            size=pool_size,
            max_concurrent_calls_per_actor=max_concurrent_calls if concurrent else None,
            enable_true_multi_threading=concurrent or None,
        ),
        batch_size=batch_size,
        batch_format="numpy",
        zero_copy_batch=True,  # read-only views of the blocks; the actor never writes to them
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )
    # Every replica loads its teacher before the first batch goes out, so none misses the batches
    # while it starts (on another node that can take long); a pool the cluster cannot place fails
    # after Ray Data's no-progress timeout with a message saying so, instead of waiting on.
    written.context.wait_for_min_actors_s = int(written.context.execution_no_progress_timeout_s)
    new_rows = int(sum(int(b["rows"].sum()) for b in written.iter_batches(batch_format="numpy", batch_size=None)))
    rows = tally_ids(expected, out_dir, expected_rows).check(out_dir)
    return SoftTargetRun(str(out_dir), rows, new_rows, len(list_parts(out_dir)), time.perf_counter() - start)


def generate_soft_targets(
    inputs, teacher_factory: Callable[[], Teacher], out_dir: str | Path, meta: SoftTargetMeta, **pool: object
) -> SoftTargetRun:
    """Top-k soft targets (see `TopKEncoder`) for every id of `inputs`; `pool` as in `generate_parts`."""
    check_k(meta.k, meta.num_classes)  # also checked when meta is built; before any Ray work either way
    return generate_parts(inputs, teacher_factory, TopKEncoder(meta), out_dir, **pool)  # type: ignore[arg-type]
