"""Inputs: embedded digits, deterministic splits, and clear errors for unusable Parquet."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raykd.data import InputSpec, digits_table, read_inputs, resolve_inputs, split_codes, split_inputs, to_numpy


def test_digits_are_the_real_bundled_dataset():
    table = digits_table()
    assert table.num_rows == 1797
    assert sorted(set(table.column("label").to_pylist())) == list(range(10))
    inputs = resolve_inputs(InputSpec())
    assert (inputs.num_features, inputs.num_classes) == (64, 10)


def test_split_depends_only_on_id_and_seed():
    ids = np.arange(10_000)
    codes = split_codes(ids, seed=0, val_fraction=0.15, test_fraction=0.2)
    np.testing.assert_array_equal(codes, split_codes(ids, 0, 0.15, 0.2))
    np.testing.assert_array_equal(codes[::-1], split_codes(ids[::-1], 0, 0.15, 0.2))
    shares = np.bincount(codes, minlength=3) / len(ids)
    np.testing.assert_allclose(shares, [0.65, 0.15, 0.2], atol=0.02)
    assert (codes != split_codes(ids, 1, 0.15, 0.2)).mean() > 0.2


def _write(tmp_path, table):
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    return str(path)


def test_parquet_without_label_column_is_refused(tmp_path):
    path = _write(tmp_path, pa.table({"id": [1, 2], "f0": [0.1, 0.2]}))
    with pytest.raises(ValueError, match=r"no label column 'label'.*--label-column"):
        resolve_inputs(InputSpec(path=path))


def test_parquet_without_ids_is_refused(tmp_path):
    path = _write(tmp_path, pa.table({"label": [0, 1], "f0": [0.1, 0.2]}))
    with pytest.raises(ValueError, match=r"no id column 'id'.*--id-column"):
        resolve_inputs(InputSpec(path=path))


def test_missing_and_corrupt_paths_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does-not-exist.*--data"):
        resolve_inputs(InputSpec(path=str(tmp_path / "does-not-exist")))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet")
    with pytest.raises(ValueError, match=r"not readable Parquet"):
        resolve_inputs(InputSpec(path=str(bad)))


@pytest.mark.ray
def test_user_parquet_reads_through_ray_data_like_digits(ray_session, tmp_path):
    table = digits_table().slice(0, 300).rename_columns(["sample", "digit", *digits_table().column_names[2:]])
    path = _write(tmp_path, table)
    inputs = resolve_inputs(InputSpec(path=path, id_column="sample", label_column="digit"))
    assert (inputs.num_features, inputs.num_classes) == (64, 10)
    parts = split_inputs(read_inputs(inputs), seed=0, val_fraction=0.15, test_fraction=0.2)
    arrays = {name: to_numpy(ds) for name, ds in parts.items()}
    all_ids = np.concatenate([a["id"] for a in arrays.values()])
    assert sorted(all_ids.tolist()) == list(range(300))
    train = arrays["train"]
    expected = np.stack([table.column(f"pixel_{i}").to_numpy() for i in range(64)], axis=1)[train["id"]]
    np.testing.assert_array_equal(train["x"], expected)
    np.testing.assert_array_equal(train["label"], table.column("digit").to_numpy()[train["id"]])
