"""Unlabeled images: a folder of PNG/JPEG files as model inputs (`id`, `x`, `path`)."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "is_image_folder", "path_id", "pack_images", "read_image_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def is_image_folder(path: str | Path) -> bool:
    path = Path(path)
    if not path.is_dir():
        return False
    files = [f for f in path.rglob("*") if f.is_file()]
    return any(f.suffix.lower() in IMAGE_SUFFIXES for f in files) and not any(f.suffix == ".parquet" for f in files)


def path_id(relative_path: str) -> int:
    """A stable non-negative int64 id for a file: the first 63 bits of sha1 of its relative path."""
    return int.from_bytes(hashlib.sha1(relative_path.encode()).digest()[:8], "big") >> 1


def pack_images(batch: dict[str, np.ndarray], root: str) -> dict[str, np.ndarray]:
    """`image` (B, H, W) uint8 + `path` -> `id` (hash of the path under root), `x` (B, H*W) in [0, 1], `path`."""
    images = np.stack(list(batch["image"])) if batch["image"].dtype == object else batch["image"]
    relative = [os.path.relpath(str(p), root) if os.path.isabs(str(p)) else str(p) for p in batch["path"]]
    return {
        "id": np.array([path_id(r) for r in relative], dtype=np.int64),
        "x": images.reshape(len(images), -1).astype(np.float32) / 255.0,
        "path": np.array(relative, dtype=object),
    }


def read_image_folder(path: str | Path, in_features: int):
    """A folder of PNG/JPEG files as a Ray Dataset of `id`, `x`, `path`: grayscale, resized to the
    model's square input (side = sqrt(in_features)), flattened, scaled to [0, 1]."""
    import ray.data

    side = math.isqrt(in_features)
    ds = ray.data.read_images(str(path), size=(side, side), mode="L", include_paths=True, file_extensions=[s[1:] for s in IMAGE_SUFFIXES])
    return ds.map_batches(pack_images, batch_format="numpy", fn_kwargs={"root": str(Path(path).resolve())})
