"""Augmented views that can be replayed: a view is (sample id, view index) plus its parameters.

A teacher's output is valid only for the view it saw. Caching targets by sample id and then
drawing a fresh random augmentation for the student (what id-keyed caches do) pairs a target
with an image the teacher never saw. Here every view's parameters — its seed, crop offsets and
flip — are drawn deterministically from (id, view, seed), stored next to that view's soft targets,
and re-applied by the student's loader, so student and teacher see the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from raykd.data.splits import mix64

__all__ = ["ViewSpec", "view_ids", "view_params", "apply_views", "expand_views", "VIEW_COLUMNS"]

VIEW_COLUMNS = ("sample_id", "view", "aug_seed", "crop_top", "crop_left", "flip")


@dataclass(frozen=True, kw_only=True)
class ViewSpec:
    """V views per sample of square images with `channels` channels (flattened (C, H, W)): view 0
    is the plain image; views 1.. are random shifts (pad `pad` pixels with zeros, crop back to the
    original size) and, with `flip`, horizontal mirror images.

    With `flip` this is CIFAR's standard training augmentation (torchvision's
    `RandomCrop(size, padding=pad)` + `RandomHorizontalFlip()`), drawn per view instead of per
    epoch. The zeros are in the input's own space: black for raw pixels, the mean colour for
    normalised RGB inputs (torchvision pads before `Normalize`, i.e. black)."""

    channels: int
    """From the data, never guessed: 1 for the digits and `data.image_shape`, 3 for RGB images."""
    views: int = 4
    pad: int = 1
    flip: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.views < 1:
            raise ValueError(f"soft_targets.views must be >= 1, got {self.views}")
        if self.pad < 0:
            raise ValueError(f"soft_targets.pad must be >= 0, got {self.pad}")
        if self.channels < 1:
            raise ValueError(f"ViewSpec.channels must be >= 1, got {self.channels}")


def view_ids(sample_ids: np.ndarray, view: np.ndarray) -> np.ndarray:
    """The key of each (sample, view): a 63-bit hash, since sample ids may already span 63 bits
    (an image folder's path hashes), where sample_id·V + view would overflow int64."""
    return (mix64(sample_ids.astype(np.uint64) ^ mix64(view, 0x5EED), 0) >> np.uint64(1)).astype(np.int64)


def view_params(sample_ids: np.ndarray, spec: ViewSpec) -> dict[str, np.ndarray]:
    """One row per (sample, view), sample-major: the view's key `id` (`view_ids`) and its
    parameters, all derived from (sample_id, view, spec.seed) alone."""
    ids = np.repeat(sample_ids.astype(np.int64), spec.views)
    view = np.tile(np.arange(spec.views, dtype=np.int64), len(sample_ids))
    key = view_ids(ids, view)
    aug_seed = mix64(key, spec.seed)
    span = 2 * spec.pad + 1
    crop_top = ((aug_seed >> np.uint64(8)) % np.uint64(span)).astype(np.int16)
    crop_left = ((aug_seed >> np.uint64(24)) % np.uint64(span)).astype(np.int16)
    flip = (((aug_seed >> np.uint64(40)) & np.uint64(1)) == 1) & spec.flip
    plain = view == 0
    crop_top[plain], crop_left[plain], flip[plain] = spec.pad, spec.pad, False
    return {
        "id": key,
        "sample_id": ids,
        "view": view,
        "aug_seed": aug_seed.astype(np.int64),
        "crop_top": crop_top,
        "crop_left": crop_left,
        "flip": flip,
    }


def apply_views(x: np.ndarray, params: dict[str, np.ndarray], spec: ViewSpec) -> np.ndarray:
    """Flat square images (B, C·side²), channel-major, → their views under `params` (one row
    each), same shape: every channel of a row gets that row's shift and flip."""
    c = spec.channels
    side = math.isqrt(x.shape[1] // c)
    if c * side * side != x.shape[1]:
        raise ValueError(f"augmented views need square images of {c} channel(s); {x.shape[1]} features is not {c}·side²")
    images = np.pad(x.reshape(-1, c, side, side), ((0, 0), (0, 0), (spec.pad, spec.pad), (spec.pad, spec.pad)))
    rows = np.arange(side)[None, None, :, None] + params["crop_top"].astype(np.int64)[:, None, None, None]
    cols = np.arange(side)[None, None, None, :] + params["crop_left"].astype(np.int64)[:, None, None, None]
    out = images[np.arange(len(x))[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]
    out = np.where(params["flip"][:, None, None, None], out[..., ::-1], out)
    return np.ascontiguousarray(out.reshape(len(x), c * side * side), dtype=x.dtype)


def expand_views(batch: dict[str, np.ndarray], spec: ViewSpec) -> dict[str, np.ndarray]:
    """A batch of samples (`id`, `x`, ...) → a batch of their V views, keyed by view id."""
    params = view_params(batch["id"], spec)
    out = dict(params)
    out["x"] = apply_views(np.repeat(batch["x"], spec.views, axis=0), params, spec)
    for name, value in batch.items():
        if name not in ("id", "x"):
            out[name] = np.repeat(value, spec.views, axis=0)
    return out
