"""The hash join in Ray tasks that the soft-target, view and pseudo-label stages join with."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from raykd.shuffle import hash_join, split_by_key

pytestmark = pytest.mark.ray


def test_split_keeps_every_copy_of_a_key_in_one_partition():
    ids = np.repeat(np.arange(0, 3000, 7, dtype=np.int64), 3)
    parts = split_by_key(pa.table({"id": ids, "row": np.arange(len(ids))}), 4)
    assert sum(p.num_rows for p in parts) == len(ids) and min(p.num_rows for p in parts) > 0
    owners = [set(p.column("id").to_numpy()) for p in parts]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1 :])


def test_join_over_partitions_and_blocks_matches_a_dataframe_merge(ray_session):
    import ray.data

    rng = np.random.default_rng(0)
    left_ids = rng.permutation(500).astype(np.int64)
    left = ray.data.from_arrow([pa.table({"id": left_ids[i::3], "x": left_ids[i::3] * 10.0}) for i in range(3)])  # three blocks
    # Two rows per key for most keys (views), keys the left side lacks, keys it has that are missing here.
    right_keys = np.concatenate([np.arange(0, 450), np.arange(0, 450, 2), np.arange(600, 610)]).astype(np.int64)
    right = ray.data.from_arrow(pa.table({"sample_id": right_keys, "v": np.arange(len(right_keys))}))
    joined = hash_join(left, right, partitions=3, on="id", right_on="sample_id").to_pandas()

    expected = left.to_pandas().merge(right.to_pandas(), left_on="id", right_on="sample_id").drop(columns="sample_id")
    assert list(joined.columns) == ["id", "x", "v"]
    key = ["id", "v"]
    assert joined.sort_values(key).reset_index(drop=True).equals(expected.sort_values(key).reset_index(drop=True))
    assert len(joined) == 450 + 225


def test_columns_on_both_sides_are_refused(ray_session):
    import ray.data

    both = ray.data.from_arrow(pa.table({"id": np.arange(3), "x": np.zeros(3)}))
    with pytest.raises(ValueError, match=r"both sides have columns \['x'\]"):
        hash_join(both, both, partitions=1)
