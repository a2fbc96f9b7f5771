"""The embedded dataset: scikit-learn's bundled handwritten digits (1,797 real 8×8 images, no download)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["digits_table", "DIGITS_FEATURES", "DIGITS_IMAGE_SHAPE"]

DIGITS_IMAGE_SHAPE = (8, 8)
DIGITS_FEATURES = [f"pixel_{i}" for i in range(DIGITS_IMAGE_SHAPE[0] * DIGITS_IMAGE_SHAPE[1])]


def digits_table() -> pa.Table:
    """Columns `id`, `label` and `pixel_0..pixel_63` (row-major 8×8, intensities scaled from 0..16 to 0..1)."""
    from sklearn.datasets import load_digits  # here: Ray workers import this module and seldom need it

    bunch = load_digits()
    pixels = (bunch.data / 16.0).astype(np.float32)
    columns = {"id": pa.array(np.arange(len(pixels), dtype=np.int64)), "label": pa.array(bunch.target.astype(np.int64))}
    columns.update({name: pa.array(pixels[:, i]) for i, name in enumerate(DIGITS_FEATURES)})
    return pa.table(columns)
