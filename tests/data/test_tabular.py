"""The bundled breast-cancer Parquet: a user's tabular data, with no ids and no image shape."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from raykd.data import InputSpec, read_inputs, resolve_inputs, to_numpy, write_breast_cancer_parquet


def test_breast_cancer_parquet_looks_like_user_tabular_data(tmp_path):
    path = write_breast_cancer_parquet(tmp_path / "nested" / "cancer.parquet")
    table = pq.read_table(path)
    assert table.num_rows == 569 and "id" not in table.column_names
    assert "mean_radius" in table.column_names and "worst_fractal_dimension" in table.column_names
    inputs = resolve_inputs(InputSpec(path=str(path)))
    assert (inputs.num_features, inputs.num_classes, inputs.positional_ids, inputs.image_shape) == (30, 2, True, None)
    scales = np.array([table.column(c).to_numpy().std() for c in inputs.feature_columns])
    assert scales.max() / scales.min() > 1e4  # the point of the data set: wildly different scales


def test_breast_cancer_with_ids_uses_them(tmp_path):
    path = write_breast_cancer_parquet(tmp_path / "cancer.parquet", id_column=True)
    inputs = resolve_inputs(InputSpec(path=str(path)))
    assert (inputs.id_column, inputs.positional_ids, inputs.num_features) == ("id", False, 30)


@pytest.mark.ray
def test_breast_cancer_reads_the_same_with_or_without_ids(ray_session, tmp_path):
    plain = resolve_inputs(InputSpec(path=str(write_breast_cancer_parquet(tmp_path / "plain.parquet"))))
    with_ids = resolve_inputs(InputSpec(path=str(write_breast_cancer_parquet(tmp_path / "ids.parquet", id_column=True))))
    a, b = to_numpy(read_inputs(plain)), to_numpy(read_inputs(with_ids))
    assert set(a) == set(b) == {"id", "x", "label"}
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert a["x"].dtype == np.float32 and a["x"].shape == (569, 30)
