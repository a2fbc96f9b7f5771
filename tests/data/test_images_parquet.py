"""Parquet with an encoded-image column (Hugging Face's `{bytes, path}` struct), read in Ray Data tasks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raykd.data import to_numpy
from raykd.data.digits_images import write_digits_image_folder
from raykd.data.image_parquet import read_image_parquet, scan_image_parquet


@pytest.fixture
def image_parquet(tmp_path):
    folder = write_digits_image_folder(tmp_path / "digits", size=12, per_class=2)
    files = sorted(folder.rglob("*.png"))
    blobs = [{"bytes": f.read_bytes(), "path": f.name} for f in files] + [{"bytes": b"\x89PNG broken", "path": "broken.png"}]
    labels = [int(f.parent.name) for f in files] + [0]
    path = tmp_path / "images.parquet"
    pq.write_table(pa.table({"img": blobs, "label": pa.array(labels, pa.int64())}), path, row_group_size=8)
    return path


def test_schema_errors_name_the_field(image_parquet):
    with pytest.raises(ValueError, match=r"^data\.image_column: 'image' is not a column .*\['img', 'label'\]"):
        scan_image_parquet(str(image_parquet), "image", "label", None, 16)
    with pytest.raises(ValueError, match=r"^data\.image_column: 'label' is int64"):
        scan_image_parquet(str(image_parquet), "label", "label", None, 16)
    scanned = scan_image_parquet(str(image_parquet), "img", "label", None, 16)
    assert scanned.positional_ids and scanned.num_classes == 10 and scanned.num_rows == 21


@pytest.mark.ray
def test_rows_decode_in_rgb_with_positional_ids_and_a_broken_row_skipped(ray_session, image_parquet):
    source = scan_image_parquet(str(image_parquet), "img", "label", None, 16)
    rows = to_numpy(read_image_parquet(source, (0.5,) * 3, (0.5,) * 3, bad_images="skip"))
    assert rows["x"].shape == (20, 3 * 16 * 16) and list(rows["id"]) == list(range(20))
    assert np.bincount(rows["label"]).tolist() == [2] * 10
    with pytest.raises(Exception, match=r"data\.image_column: row id 20 is not a readable image"):
        to_numpy(read_image_parquet(source, (0.5,) * 3, (0.5,) * 3))
