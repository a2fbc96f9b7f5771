"""Inputs: embedded digits, deterministic splits, positional ids, and clear errors for unusable Parquet."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raykd.data import InputSpec, digits_table, parquet_fragments, read_inputs, resolve_inputs, split_codes, split_inputs, to_numpy


def test_digits_are_the_real_bundled_dataset():
    table = digits_table()
    assert table.num_rows == 1797
    assert sorted(set(table.column("label").to_pylist())) == list(range(10))
    inputs = resolve_inputs(InputSpec())
    assert (inputs.num_features, inputs.num_classes) == (64, 10)
    assert (inputs.id_column, inputs.positional_ids, inputs.image_shape) == ("id", False, (8, 8))


def test_digits_are_flat_once_pixels_are_dropped():
    inputs = resolve_inputs(InputSpec(feature_columns=tuple(f"pixel_{i}" for i in range(32))))
    assert inputs.image_shape is None


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


def test_parquet_without_ids_numbers_rows_by_position(tmp_path):
    path = _write(tmp_path, pa.table({"label": [0, 1], "f0": [0.1, 0.2]}))
    inputs = resolve_inputs(InputSpec(path=path))
    assert (inputs.id_column, inputs.positional_ids, inputs.feature_columns) == (None, True, ("f0",))


def test_an_id_column_named_id_is_used_without_asking(tmp_path):
    path = _write(tmp_path, pa.table({"id": [7, 9], "label": [0, 1], "f0": [0.1, 0.2]}))
    inputs = resolve_inputs(InputSpec(path=path))
    assert (inputs.id_column, inputs.positional_ids, inputs.feature_columns) == ("id", False, ("f0",))
    text_ids = _write(tmp_path, pa.table({"id": ["a", "b"], "label": [0, 1], "f0": [0.1, 0.2]}))
    with pytest.raises(ValueError, match=r"id column 'id' must hold integers.*--id-column"):
        resolve_inputs(InputSpec(path=text_ids))


def test_named_but_missing_id_column_is_refused(tmp_path):
    path = _write(tmp_path, pa.table({"label": [0, 1], "f0": [0.1, 0.2]}))
    with pytest.raises(ValueError, match=r"no id column 'sample'.*--id-column"):
        resolve_inputs(InputSpec(path=path, id_column="sample"))
    with pytest.raises(ValueError, match=r"no id column 'sample'.*--id-column"):
        resolve_inputs(InputSpec(id_column="sample"))


def test_image_shape_must_match_the_feature_count(tmp_path):
    table = digits_table().slice(0, 20)
    path = _write(tmp_path, table)
    assert resolve_inputs(InputSpec(path=path)).image_shape is None  # user Parquet is flat unless told
    assert resolve_inputs(InputSpec(path=path, image_shape=(8, 8))).image_shape == (8, 8)
    assert resolve_inputs(InputSpec(path=path, image_shape=(4, 16))).image_shape == (4, 16)
    with pytest.raises(ValueError, match=r"image_shape 7x7 needs 49 feature columns.*has 64.*--image-shape"):
        resolve_inputs(InputSpec(path=path, image_shape=(7, 7)))
    with pytest.raises(ValueError, match=r"two positive integers.*--image-shape"):
        resolve_inputs(InputSpec(path=path, image_shape=(0, 64)))
    with pytest.raises(ValueError, match=r"image_shape 4x4"):
        resolve_inputs(InputSpec(image_shape=(4, 4)))


def _write_parts(root):
    """30 rows over 3 files (one nested) with 1-3 row groups each, written out of sorted order;
    `pos` holds each row's intended position so ids can be checked against it."""
    (root / "c").mkdir(parents=True)
    layout = [("b.parquet", 10, 4), ("c/a.parquet", 8, 8), ("a.parquet", 12, 5)]  # sorted: a, b, c/a
    order = {"a.parquet": 0, "b.parquet": 12, "c/a.parquet": 22}
    for name, rows, group in layout:
        start = order[name]
        pos = np.arange(start, start + rows)
        table = pa.table({"pos": pos.astype(np.float64), "f1": pos * 0.5, "label": (pos % 3).astype(np.int64)})
        pq.write_table(table, root / name, row_group_size=group)
    (root / "_SUCCESS").write_text("")  # writer markers are not data
    return 30


def test_fragments_come_from_footers_in_sorted_file_order(tmp_path):
    _write_parts(tmp_path)
    fragments = parquet_fragments(tmp_path)
    assert [(f["path"].rsplit("/", 1)[-1], f["row_group"], f["offset"], f["num_rows"]) for f in fragments] == [
        ("a.parquet", 0, 0, 5), ("a.parquet", 1, 5, 5), ("a.parquet", 2, 10, 2),
        ("b.parquet", 0, 12, 4), ("b.parquet", 1, 16, 4), ("b.parquet", 2, 20, 2),
        ("a.parquet", 0, 22, 8),
    ]  # fmt: skip
    assert fragments[-1]["path"].endswith("c/a.parquet")
    assert [(f["offset"], f["num_rows"]) for f in parquet_fragments(tmp_path, limit=7)] == [(0, 5), (5, 2)]


@pytest.mark.ray
def test_positional_ids_are_row_positions_and_stable(ray_session, tmp_path):
    n = _write_parts(tmp_path)
    inputs = resolve_inputs(InputSpec(path=str(tmp_path)))
    assert inputs.positional_ids and inputs.feature_columns == ("pos", "f1") and inputs.num_classes == 3
    first, second = to_numpy(read_inputs(inputs)), to_numpy(read_inputs(inputs))
    np.testing.assert_array_equal(first["id"], np.arange(n))
    np.testing.assert_array_equal(first["x"][:, 0], first["id"].astype(np.float32))  # id == row position
    np.testing.assert_array_equal(first["label"], first["id"] % 3)
    assert first["x"].dtype == np.float32 and first["x"].shape == (n, 2)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    limited = to_numpy(read_inputs(inputs, limit=7))
    np.testing.assert_array_equal(limited["id"], np.arange(7))
    parts = split_inputs(read_inputs(inputs), seed=0, val_fraction=0.2, test_fraction=0.2)
    ids = np.concatenate([to_numpy(ds)["id"] for ds in parts.values()])
    assert sorted(ids.tolist()) == list(range(n))


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
