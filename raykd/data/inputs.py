"""Model inputs as a Ray Dataset with columns `id`, `x` (float32 vector) and `label`.

The embedded digits and a user's Parquet go through the same packing step, so everything after
this module is the same for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from raykd.data.digits import digits_table
from raykd.data.splits import SPLITS, split_codes

__all__ = ["InputSpec", "Inputs", "resolve_inputs", "read_inputs", "split_inputs", "to_numpy"]


@dataclass(frozen=True)
class InputSpec:
    """Where inputs come from. `path=None` means the embedded digits data."""

    path: str | None = None
    id_column: str = "id"
    label_column: str | None = "label"
    feature_columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Inputs:
    """A resolved spec: the checked column names and the sizes the models need."""

    spec: InputSpec
    feature_columns: tuple[str, ...]
    num_classes: int | None

    @property
    def num_features(self) -> int:
        return len(self.feature_columns)


def _schema(spec: InputSpec) -> pa.Schema:
    if spec.path is None:
        return digits_table().schema
    path = Path(spec.path)
    if not path.exists():
        raise FileNotFoundError(f"data path {spec.path!r} does not exist; pass --data a Parquet file or directory")
    try:
        return pads.dataset(str(path), format="parquet").schema
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"data path {spec.path!r} is not readable Parquet ({err}); check the file or regenerate it") from err


def resolve_inputs(spec: InputSpec) -> Inputs:
    """Check columns before any Ray work starts; errors name the column and the flag that sets it."""
    schema = _schema(spec)
    names = list(schema.names)
    where = "the digits data" if spec.path is None else f"Parquet at {spec.path!r}"
    if spec.id_column not in names:
        raise ValueError(
            f"{where} has no id column {spec.id_column!r} (columns: {names}); add a unique integer id "
            "column or name yours with --id-column"
        )
    if not pa.types.is_integer(schema.field(spec.id_column).type):
        raise ValueError(f"id column {spec.id_column!r} must hold integers, got {schema.field(spec.id_column).type}")
    if spec.label_column is not None and spec.label_column not in names:
        raise ValueError(
            f"{where} has no label column {spec.label_column!r} (columns: {names}); name it with --label-column"
        )
    reserved = {spec.id_column, spec.label_column}
    features = spec.feature_columns or tuple(
        n for n in names if n not in reserved and (pa.types.is_integer(schema.field(n).type) or pa.types.is_floating(schema.field(n).type))
    )
    missing = [f for f in features if f not in names]
    if missing:
        raise ValueError(f"{where} lacks feature columns {missing}; check --feature-columns")
    if not features:
        raise ValueError(f"{where} has no numeric feature columns besides id/label (columns: {names})")
    num_classes = None
    if spec.label_column is not None:
        labels = (
            digits_table().column(spec.label_column)
            if spec.path is None
            else pads.dataset(spec.path, format="parquet").to_table(columns=[spec.label_column]).column(0)
        )
        values = labels.to_numpy()
        if len(values) and values.min() < 0:
            raise ValueError(f"label column {spec.label_column!r} holds negative values; labels must be 0..C-1")
        num_classes = int(values.max()) + 1 if len(values) else 0
        if num_classes < 2:
            raise ValueError(f"label column {spec.label_column!r} has fewer than 2 classes")
    return Inputs(spec=spec, feature_columns=tuple(features), num_classes=num_classes)


def _pack(batch: pa.Table, id_column: str, label_column: str | None, feature_columns: Sequence[str]) -> dict[str, np.ndarray]:
    out = {
        "id": batch.column(id_column).to_numpy().astype(np.int64),
        "x": np.stack([batch.column(c).to_numpy().astype(np.float32) for c in feature_columns], axis=1),
    }
    if label_column is not None:
        out["label"] = batch.column(label_column).to_numpy().astype(np.int64)
    return out


def read_inputs(inputs: Inputs, limit: int | None = None):
    """A Ray Dataset of `id`, `x`, `label` (label only when the spec has one)."""
    import ray.data

    spec = inputs.spec
    columns = [spec.id_column, *inputs.feature_columns] + ([spec.label_column] if spec.label_column else [])
    if spec.path is None:
        ds = ray.data.from_arrow(digits_table().select(columns))
    else:
        ds = ray.data.read_parquet(spec.path, columns=columns)
    if limit is not None:
        ds = ds.limit(limit)
    return ds.map_batches(
        _pack,
        batch_format="pyarrow",
        fn_kwargs={"id_column": spec.id_column, "label_column": spec.label_column, "feature_columns": inputs.feature_columns},
    )


def _keep_split(batch: dict[str, np.ndarray], code: int, seed: int, val_fraction: float, test_fraction: float):
    keep = split_codes(batch["id"], seed, val_fraction, test_fraction) == code
    return {k: v[keep] for k, v in batch.items()}


def split_inputs(ds, seed: int, val_fraction: float, test_fraction: float) -> dict:
    """{"train", "val", "test"} Ray Datasets; membership depends only on (id, seed)."""
    return {
        name: ds.map_batches(
            _keep_split,
            batch_format="numpy",
            fn_kwargs={"code": code, "seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction},
        )
        for code, name in enumerate(SPLITS)
    }


def to_numpy(ds) -> dict[str, np.ndarray]:
    """Collect a (small) dataset on the driver, sorted by id so results are reproducible."""
    parts = list(ds.iter_batches(batch_format="numpy", batch_size=None))
    if not parts:
        raise ValueError("the dataset is empty; check --data and the split fractions")
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(merged["id"], kind="stable")
    return {k: v[order] for k, v in merged.items()}
