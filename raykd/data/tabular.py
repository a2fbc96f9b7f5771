"""A real tabular dataset as a user would bring it: scikit-learn's bundled breast-cancer data.

569 rows, 30 numeric features on very different scales (areas in the thousands next to
smoothness around 0.1) and 2 classes, no download. Written as Parquet without an id column by
default, it is what "a user's own tabular Parquet" looks like to tests and benchmarks: it needs
positional ids, flat (non-image) architectures and input standardization.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["breast_cancer_table", "write_breast_cancer_parquet"]


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def breast_cancer_table(id_column: bool = False) -> pa.Table:
    """The 30 features (snake_case names, float64 as shipped), `label` (0 malignant, 1 benign) and,
    with `id_column`, an int64 `id` 0..568 first."""
    from sklearn.datasets import load_breast_cancer  # here: Ray workers import raykd.data and never call this

    bunch = load_breast_cancer()
    columns: dict[str, pa.Array] = {}
    if id_column:
        columns["id"] = pa.array(np.arange(len(bunch.target), dtype=np.int64))
    columns.update({_snake(name): pa.array(bunch.data[:, i]) for i, name in enumerate(bunch.feature_names)})
    columns["label"] = pa.array(bunch.target.astype(np.int64))
    return pa.table(columns)


def write_breast_cancer_parquet(path: str | Path, id_column: bool = False) -> Path:
    """Write `breast_cancer_table(id_column)` to the Parquet file `path` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(breast_cancer_table(id_column), path)
    return path
