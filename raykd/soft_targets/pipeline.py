"""The soft-target stage: stream inputs through a teacher actor pool into a part-file directory."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from raykd.soft_targets.actor import TeacherActor
from raykd.soft_targets.encoders import PartEncoder, TopKEncoder
from raykd.soft_targets.schema import SoftTargetMeta
from raykd.soft_targets.store import check_compatible, list_parts, read_ids, validate_exactly_once
from raykd.teachers.base import Teacher

__all__ = ["SoftTargetRun", "generate_parts", "generate_soft_targets", "collect_ids"]


@dataclass(frozen=True)
class SoftTargetRun:
    path: str
    rows: int
    new_rows: int
    parts: int
    seconds: float


def collect_ids(ds) -> np.ndarray:
    parts = [b["id"] for b in ds.select_columns(["id"]).iter_batches(batch_format="numpy", batch_size=None)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _drop_done(batch: dict[str, np.ndarray], done: np.ndarray) -> dict[str, np.ndarray]:
    keep = ~np.isin(batch["id"], done)
    return {k: v[keep] for k, v in batch.items()}


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
) -> SoftTargetRun:
    """Runs `encoder` on every id of `inputs` (a Ray Dataset with `id`, `x`) exactly once.

    Ids already present in `out_dir` from an earlier, interrupted run are skipped; a directory
    holding another teacher's or format's parts is refused. Fractional `num_cpus` keeps CPUs free
    for the read tasks.
    """
    import ray.data

    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_compatible(out_dir, encoder.metadata)
    expected = collect_ids(inputs)
    if len(np.unique(expected)) != len(expected):
        raise ValueError("input ids are not unique; outputs are keyed by id, so each id must appear once")
    done = np.unique(read_ids(out_dir))
    todo = inputs.select_columns(["id", "x"])
    if len(done):
        todo = todo.map_batches(_drop_done, batch_format="numpy", fn_kwargs={"done": done})
    written = todo.map_batches(
        TeacherActor,
        fn_constructor_kwargs={"teacher_factory": teacher_factory, "encoder": encoder, "out_dir": str(out_dir)},
        compute=ray.data.ActorPoolStrategy(size=pool_size),
        batch_size=batch_size,
        batch_format="numpy",
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )
    new_rows = int(sum(int(b["rows"].sum()) for b in written.iter_batches(batch_format="numpy", batch_size=None)))
    rows = validate_exactly_once(out_dir, expected)
    return SoftTargetRun(str(out_dir), rows, new_rows, len(list_parts(out_dir)), time.perf_counter() - start)


def generate_soft_targets(
    inputs, teacher_factory: Callable[[], Teacher], out_dir: str | Path, meta: SoftTargetMeta, **pool: object
) -> SoftTargetRun:
    """Top-k soft targets (see `TopKEncoder`) for every id of `inputs`; `pool` as in `generate_parts`."""
    return generate_parts(inputs, teacher_factory, TopKEncoder(meta), out_dir, **pool)  # type: ignore[arg-type]
