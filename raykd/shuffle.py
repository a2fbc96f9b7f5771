"""Hash shuffles in plain Ray tasks: rows split by a hash of an integer key, and an inner join on it.

Plain tasks rather than Ray Data's join or group-by: the same hash shuffle, without the aggregator
actors a Ray Data shuffle starts on every call (a process each, seconds of start-up even for a few
hundred ids). The driver holds object references only; rows stay in the object store.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["block_partitions", "hash_join", "split_by_key"]


def split_by_key(table: pa.Table, partitions: int, key: str = "id") -> pa.Table | list[pa.Table]:
    """`table`'s rows split by a hash of their `key`, so every copy of a key lands in the same
    partition whatever block or file it came from (a multiplicative hash: keys in strides would
    skew a plain modulo). One partition is the table itself: a task with `num_returns=1` returns
    its value whole."""
    if partitions == 1:
        return table
    keys = table.column(key).to_numpy().astype(np.int64, copy=False)
    which = ((keys.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) % np.uint64(partitions)
    order = np.argsort(which, kind="stable")
    bounds = [0, *np.searchsorted(which[order], np.arange(1, partitions, dtype=np.uint64)).tolist(), len(keys)]
    rows = table.take(pa.array(order))
    return [rows.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:])]


def _split_block(block, partitions: int, key: str, columns: list[str] | None) -> pa.Table | list[pa.Table]:
    from ray.data.block import BlockAccessor

    table = BlockAccessor.for_block(block).to_arrow()
    return split_by_key(table if columns is None else table.select(columns), partitions, key)


def block_partitions(ds, partitions: int, key: str = "id", columns: list[str] | None = None) -> list[list]:
    """Per block of the Ray Dataset `ds`, references to its `partitions` hash partitions by `key`
    (`columns` of it, or all)."""
    import ray

    split = ray.remote(_split_block).options(num_returns=partitions)
    refs = [split.remote(ref, partitions, key, columns) for bundle in ds.iter_internal_ref_bundles() for ref in bundle.block_refs]
    return [r if isinstance(r, list) else [r] for r in refs]  # num_returns=1: one reference


def _join_partition(left_sources: int, on: str, right_on: str, *tables: pa.Table) -> pa.Table:
    """One partition's inner join: the first `left_sources` tables are the left side's rows."""
    left, right = pa.concat_tables(tables[:left_sources]), pa.concat_tables(tables[left_sources:])
    left_keys, right_keys = left.column(on).to_numpy(), right.column(right_on).to_numpy()
    order = np.argsort(left_keys, kind="stable")
    lo, hi = np.searchsorted(left_keys[order], right_keys, "left"), np.searchsorted(left_keys[order], right_keys, "right")
    counts = hi - lo  # left rows matching each right row
    starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)  # each match's first left position, less its output row
    left_rows = order[starts + np.arange(counts.sum())]
    right_rows = pa.array(np.repeat(np.arange(len(right_keys)), counts))
    joined = left.take(pa.array(left_rows))
    for name in right.column_names:
        if name != right_on:
            joined = joined.append_column(right.field(name), right.column(name).take(right_rows))
    return joined


def hash_join(left, right, partitions: int, on: str = "id", right_on: str | None = None):
    """Inner join of two Ray Datasets, `left.on == right.right_on` (integer keys), as a
    materialized Ray Dataset: `left`'s columns, then `right`'s without its key. Each of the
    `partitions` hash partitions is joined in one Ray task."""
    import ray
    import ray.data

    right_on = right_on or on
    clash = (set(left.schema().names) & set(right.schema().names)) - {right_on}
    if clash:
        raise ValueError(f"hash_join: both sides have columns {sorted(clash)}; drop or rename them on one side")
    lefts, rights = block_partitions(left, partitions, on), block_partitions(right, partitions, right_on)
    if not lefts or not rights:
        raise ValueError(f"hash_join: the {'left' if not lefts else 'right'} dataset has no blocks")
    task = ray.remote(_join_partition)
    refs = [task.remote(len(lefts), on, right_on, *(refs[p] for refs in lefts), *(refs[p] for refs in rights)) for p in range(partitions)]
    return ray.data.from_arrow_refs(refs)
