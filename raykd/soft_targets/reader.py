"""Reading soft targets back and joining them with the inputs by id."""

from __future__ import annotations

from pathlib import Path

from raykd.shuffle import hash_join
from raykd.soft_targets.store import part_dataset, read_meta, shuffle_partitions

__all__ = ["read_soft_targets", "join_with_inputs"]


def read_soft_targets(directory: str | Path):
    """(Ray Dataset of id/topk_values/topk_indices, its metadata)."""
    meta = read_meta(directory)
    if meta is None:
        raise FileNotFoundError(f"no soft-target part files in {directory}; run the soft-target stage first")
    return part_dataset(directory), meta


def join_with_inputs(inputs, soft_targets, expected_rows: int, num_partitions: int | None = None):
    """Inner join on `id`; every input row must find its soft targets. Partitions grow with
    `expected_rows` (`store.shuffle_partitions`) unless given."""
    partitions = num_partitions or shuffle_partitions(expected_rows)
    joined = hash_join(inputs, soft_targets, partitions).materialize()
    if joined.count() != expected_rows:
        raise ValueError(
            f"{expected_rows - joined.count()} of {expected_rows} inputs have no soft targets; "
            "the soft-target directory was made for other data: regenerate it"
        )
    return joined
