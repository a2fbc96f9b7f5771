"""Model inputs as a Ray Dataset with columns `id`, `x` (float32 vector) and `label`.

The embedded digits and a user's Parquet go through the same packing step, so everything after
this module is the same for both.

Ids key everything downstream (splits, soft targets, views), so Parquet without an id column gets
positional ids: a row's position in the dataset, with files in sorted path order and row groups in
file order. Positions are computed from the Parquet footers alone, so the driver never collects
data and the read itself still fans out over the cluster, one row group per task.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from raykd.data.digits import DIGITS_FEATURES, DIGITS_IMAGE_SHAPE, digits_table
from raykd.data.splits import SPLITS, split_codes

__all__ = [
    "DEFAULT_ID_COLUMN",
    "InputSpec",
    "Inputs",
    "parquet_files",
    "parquet_fragments",
    "resolve_inputs",
    "read_inputs",
    "split_inputs",
    "to_numpy",
]

DEFAULT_ID_COLUMN = "id"


@dataclass(frozen=True)
class InputSpec:
    """Where inputs come from. `path=None` means the embedded digits data.

    `id_column=None` uses a column named "id" when the data has one, otherwise each row's position
    (see the module docstring). `image_shape=(H, W)` says the features are an image's pixels in
    row-major order, which lets image models (CNNs, augmented views) apply; None = flat features.
    """

    path: str | None = None
    id_column: str | None = None
    label_column: str | None = "label"
    feature_columns: tuple[str, ...] | None = None
    image_shape: tuple[int, int] | None = None


@dataclass(frozen=True)
class Inputs:
    """A resolved spec: the checked column names and the sizes the models need.

    `id_column` is the column ids are read from; None exactly when `positional_ids` (ids are row
    positions). `image_shape` is (H, W) for image data (the digits: (8, 8)), else None.
    """

    spec: InputSpec
    feature_columns: tuple[str, ...]
    num_classes: int | None
    id_column: str | None = DEFAULT_ID_COLUMN
    positional_ids: bool = False
    image_shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.positional_ids != (self.id_column is None):
            raise ValueError(
                f"Inputs: positional_ids={self.positional_ids} contradicts id_column={self.id_column!r}; "
                "ids come from a column or from row positions, not both"
            )

    @property
    def num_features(self) -> int:
        return len(self.feature_columns)


def _hidden(relative: Path) -> bool:
    # Mirrors pyarrow's dataset discovery, which skips "_SUCCESS"-style and dot files and folders.
    return any(part.startswith((".", "_")) for part in relative.parts)


def parquet_files(path: str | Path) -> list[Path]:
    """The Parquet files behind `path` (a file, or `*.parquet` under a directory, recursively),
    sorted by their path relative to it: the order that positional ids follow."""
    path = Path(path)
    if path.is_file():
        return [path.resolve()]
    found = [p for p in path.rglob("*.parquet") if p.is_file() and not _hidden(p.relative_to(path))]
    return [p.resolve() for p in sorted(found, key=lambda p: p.relative_to(path).as_posix())]


def parquet_fragments(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """One entry per non-empty row group, `path`, `row_group`, `offset` (position of its first
    row in the dataset) and `num_rows` (cut so the total is at most `limit`), from footers only."""
    fragments: list[dict[str, Any]] = []
    offset = 0
    for file in parquet_files(path):
        metadata = pq.ParquetFile(file).metadata
        for row_group in range(metadata.num_row_groups):
            rows = metadata.row_group(row_group).num_rows
            if limit is not None:
                rows = min(rows, limit - offset)
            if rows > 0:
                fragments.append({"path": str(file), "row_group": row_group, "offset": offset, "num_rows": rows})
            offset += rows
            if limit is not None and offset >= limit:
                return fragments
    return fragments


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


def _id_column(spec: InputSpec, schema: pa.Schema, where: str) -> str | None:
    """The column ids come from, or None for positional ids."""
    names = list(schema.names)
    if spec.id_column is not None and spec.id_column not in names:
        raise ValueError(
            f"{where} has no id column {spec.id_column!r} (columns: {names}); name an existing integer "
            "id column with --id-column, or leave --id-column unset to number rows by position"
        )
    column = spec.id_column if spec.id_column is not None else (DEFAULT_ID_COLUMN if DEFAULT_ID_COLUMN in names else None)
    if column is not None and not pa.types.is_integer(schema.field(column).type):
        hint = "" if spec.id_column is not None else f" (a column named {DEFAULT_ID_COLUMN!r} is used as the id when present)"
        raise ValueError(
            f"id column {column!r} must hold integers, got {schema.field(column).type}{hint}; convert it, "
            "or name an integer id column with --id-column"
        )
    return column


def _image_shape(spec: InputSpec, features: Sequence[str], where: str) -> tuple[int, int] | None:
    if spec.image_shape is None:
        # The digits are an image only while all 64 pixels are used, in order.
        return DIGITS_IMAGE_SHAPE if spec.path is None and tuple(features) == tuple(DIGITS_FEATURES) else None
    try:
        shape = tuple(operator.index(s) for s in spec.image_shape)
    except TypeError:
        shape = ()
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"image_shape must be two positive integers (height, width), got {spec.image_shape!r}; fix --image-shape")
    height, width = shape
    if height * width != len(features):
        raise ValueError(
            f"image_shape {height}x{width} needs {height * width} feature columns, but {where} has "
            f"{len(features)}; fix --image-shape (or --feature-columns), or leave it unset for flat features"
        )
    return (height, width)


def resolve_inputs(spec: InputSpec) -> Inputs:
    """Check columns before any Ray work starts; errors name the column and the flag that sets it."""
    schema = _schema(spec)
    names = list(schema.names)
    where = "the digits data" if spec.path is None else f"Parquet at {spec.path!r}"
    id_column = _id_column(spec, schema, where)
    if id_column is None and not parquet_files(spec.path):
        raise ValueError(f"{where} has no *.parquet files to number rows from; name the files *.parquet or add an id column")
    if spec.label_column is not None and spec.label_column not in names:
        raise ValueError(
            f"{where} has no label column {spec.label_column!r} (columns: {names}); name it with --label-column"
        )
    reserved = {id_column, spec.label_column}
    features = spec.feature_columns or tuple(
        n for n in names if n not in reserved and (pa.types.is_integer(schema.field(n).type) or pa.types.is_floating(schema.field(n).type))
    )
    missing = [f for f in features if f not in names]
    if missing:
        raise ValueError(f"{where} lacks feature columns {missing}; check --feature-columns")
    if not features:
        raise ValueError(f"{where} has no numeric feature columns besides id/label (columns: {names})")
    image_shape = _image_shape(spec, features, where)
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
    return Inputs(
        spec=spec,
        feature_columns=tuple(features),
        num_classes=num_classes,
        id_column=id_column,
        positional_ids=id_column is None,
        image_shape=image_shape,
    )


def _pack_columns(table: pa.Table, ids: np.ndarray, label_column: str | None, feature_columns: Sequence[str]) -> dict[str, np.ndarray]:
    out = {
        "id": ids.astype(np.int64, copy=False),
        "x": np.stack([table.column(c).to_numpy().astype(np.float32) for c in feature_columns], axis=1),
    }
    if label_column is not None:
        out["label"] = table.column(label_column).to_numpy().astype(np.int64)
    return out


def _pack(batch: pa.Table, id_column: str, label_column: str | None, feature_columns: Sequence[str]) -> dict[str, np.ndarray]:
    return _pack_columns(batch, batch.column(id_column).to_numpy(), label_column, feature_columns)


def _read_fragments(batch: dict[str, np.ndarray], label_column: str | None, feature_columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Runs on the workers: read each listed row group and number its rows from its offset."""
    columns = [*feature_columns] + ([label_column] if label_column else [])
    parts = []
    for path, row_group, offset, rows in zip(batch["path"], batch["row_group"], batch["offset"], batch["num_rows"]):
        table = pq.ParquetFile(str(path)).read_row_group(int(row_group), columns=columns).slice(0, int(rows))
        if table.num_rows != int(rows):
            raise RuntimeError(
                f"{path} row group {row_group} has {table.num_rows} rows, its footer said {rows}; "
                "the data changed while it was read, so positional ids would shift — rerun on unchanged files"
            )
        parts.append(_pack_columns(table, int(offset) + np.arange(table.num_rows, dtype=np.int64), label_column, feature_columns))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _read_positional(inputs: Inputs, limit: int | None):
    import ray.data

    fragments = parquet_fragments(inputs.spec.path, limit)
    # One row group per task: the read scales with the cluster, the driver only read footers.
    return ray.data.from_items(fragments).map_batches(
        _read_fragments,
        batch_size=1,
        batch_format="numpy",
        fn_kwargs={"label_column": inputs.spec.label_column, "feature_columns": inputs.feature_columns},
    )


def read_inputs(inputs: Inputs, limit: int | None = None):
    """A Ray Dataset of `id`, `x`, `label` (label only when the spec has one)."""
    import ray.data

    spec = inputs.spec
    if inputs.positional_ids:
        return _read_positional(inputs, limit)
    columns = [inputs.id_column, *inputs.feature_columns] + ([spec.label_column] if spec.label_column else [])
    if spec.path is None:
        ds = ray.data.from_arrow(digits_table().select(columns))
    else:
        ds = ray.data.read_parquet(spec.path, columns=columns)
    if limit is not None:
        ds = ds.limit(limit)
    return ds.map_batches(
        _pack,
        batch_format="pyarrow",
        fn_kwargs={"id_column": inputs.id_column, "label_column": spec.label_column, "feature_columns": inputs.feature_columns},
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
