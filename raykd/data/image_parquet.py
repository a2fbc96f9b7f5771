"""Parquet with an encoded-image column (PNG/JPEG bytes, or a Hugging Face `{bytes, path}` struct)
as model inputs: `id`, `x` (RGB, the evaluation transform of `image_transforms`), `label`.

Ids come from an integer id column, else from row positions read off the footers (as for feature
Parquet, `raykd.data.inputs`); images are decoded in Ray Data tasks, so decoding scales out.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from raykd.data.image_transforms import eval_transform
from raykd.data.images import RGBSquares
from raykd.data.inputs import DEFAULT_ID_COLUMN, InputSpec, parquet_fragments

__all__ = ["ImageParquet", "read_image_parquet", "scan_image_parquet"]


@dataclass(frozen=True)
class ImageParquet(RGBSquares):
    """A checked image Parquet; duck-types `raykd.data.Inputs` for the stages like `ImageFolder`."""

    path: str
    image_column: str
    label_column: str
    id_column: str | None
    num_classes: int
    image_size: int
    num_rows: int
    """Rows in the files; undecodable ones are only known once read, so the data stage counts them
    as the rows its splits lack."""

    @property
    def positional_ids(self) -> bool:
        return self.id_column is None

    @property
    def spec(self) -> InputSpec:
        return InputSpec(self.path, self.id_column, self.label_column, image_shape=self.image_shape)


def _is_image_type(kind: pa.DataType) -> bool:
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return True
    return pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0


def scan_image_parquet(path: str, image_column: str, label_column: str, id_column: str | None, image_size: int) -> ImageParquet:
    """Check the columns from the schema (and the labels); each problem is one line naming the field."""
    try:
        schema = pads.dataset(path, format="parquet").schema
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"data.path: {path!r} is not readable Parquet ({err}); check the file or regenerate it") from None
    names = list(schema.names)
    if image_column not in names or not _is_image_type(schema.field(image_column).type):
        got = f"is {schema.field(image_column).type}" if image_column in names else f"is not a column (columns: {names})"
        raise ValueError(f"data.image_column: {image_column!r} {got} in {path}; name a column of encoded image bytes (binary, or a struct with a 'bytes' field)")
    if label_column not in names or not pa.types.is_integer(schema.field(label_column).type):
        raise ValueError(f"data.label_column: {label_column!r} is not an integer column of {path} (columns: {names}); name the class column with --label-column")
    column = id_column or (DEFAULT_ID_COLUMN if DEFAULT_ID_COLUMN in names else None)
    if column is not None and (column not in names or not pa.types.is_integer(schema.field(column).type)):
        raise ValueError(f"data.id_column: {column!r} is not an integer column of {path}; name one with --id-column, or leave it unset for row positions")
    labels = pads.dataset(path, format="parquet").to_table(columns=[label_column]).column(0).to_numpy()
    if len(labels) == 0 or labels.min() < 0 or labels.max() < 1:
        raise ValueError(f"data.label_column: {label_column!r} in {path} must hold labels 0..C-1 of at least 2 classes")
    return ImageParquet(str(path), image_column, label_column, column, int(labels.max()) + 1, image_size, len(labels))


def _decode(
    ids: np.ndarray, blobs: Sequence, labels: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float], skip: bool
) -> dict[str, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    keep, images = [], []
    for i, blob in enumerate(blobs):
        data = blob["bytes"] if isinstance(blob, dict) else blob
        try:
            with Image.open(io.BytesIO(data)) as image:
                images.append(np.asarray(image.convert("RGB")))
        except (UnidentifiedImageError, OSError, TypeError, ValueError) as err:
            if not skip:
                raise ValueError(f"data.image_column: row id {int(ids[i])} is not a readable image ({err}); fix it, or set data.bad_images=skip") from None
            continue
        keep.append(i)
    x = eval_transform(images, size, mean, std) if images else np.zeros((0, 3 * size * size), np.float32)
    return {"id": ids[keep].astype(np.int64), "x": x, "label": labels[keep].astype(np.int64)}


def _decode_rows(batch: pa.Table, source: ImageParquet, mean, std, skip: bool) -> dict[str, np.ndarray]:
    ids, labels = batch.column(source.id_column).to_numpy(), batch.column(source.label_column).to_numpy()
    return _decode(ids, batch.column(source.image_column).to_pylist(), labels, source.image_size, mean, std, skip)


def _decode_fragments(batch: dict[str, np.ndarray], source: ImageParquet, mean, std, skip: bool) -> dict[str, np.ndarray]:
    """One row group per call: its rows numbered from the group's offset in the dataset."""
    parts = []
    for path, row_group, offset, rows in zip(batch["path"], batch["row_group"], batch["offset"], batch["num_rows"]):
        table = pq.ParquetFile(str(path)).read_row_group(int(row_group), columns=[source.image_column, source.label_column]).slice(0, int(rows))
        ids = int(offset) + np.arange(table.num_rows, dtype=np.int64)
        parts.append(_decode(ids, table.column(0).to_pylist(), table.column(1).to_numpy(), source.image_size, mean, std, skip))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def read_image_parquet(source: ImageParquet, mean: Sequence[float], std: Sequence[float], bad_images: str = "error", limit: int | None = None):
    """A Ray Dataset of `id`, `x` (3·size² floats) and `label`; undecodable rows raise or, with `bad_images="skip"`, drop."""
    import ray.data

    kwargs = {"source": source, "mean": tuple(mean), "std": tuple(std), "skip": bad_images == "skip"}
    if source.positional_ids:
        return ray.data.from_items(parquet_fragments(source.path, limit)).map_batches(_decode_fragments, batch_size=1, batch_format="numpy", fn_kwargs=kwargs)
    ds = ray.data.read_parquet(source.path, columns=[source.id_column, source.image_column, source.label_column])
    if limit is not None:
        ds = ds.limit(limit)
    return ds.map_batches(_decode_rows, batch_format="pyarrow", fn_kwargs=kwargs)
