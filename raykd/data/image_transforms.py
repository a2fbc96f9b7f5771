"""Image transforms in torch tensor ops, for Ray Data's `map_batches` (no torchvision needed).

Eval: resize the shorter side, centre crop, normalise. Train: random resized crop and horizontal
flip, whose parameters come from (seed, epoch, id) alone, so a run replays exactly and a view's
parameters can be stored beside its soft targets.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from raykd.data.splits import mix64

__all__ = ["crop_params", "eval_transform", "train_transform"]


def _tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 → (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def _resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def _normalise(images: list[torch.Tensor], mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    x = (torch.cat(images) - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return x.reshape(len(x), -1).numpy()


def eval_transform(images: Sequence[np.ndarray], size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """RGB images of any sizes → (B, 3·size·size) float32: shorter side resized to `size`, centre crop, normalised."""
    out = []
    for image in images:
        t = _tensor(image)
        h, w = t.shape[-2:]
        scale = size / min(h, w)
        t = _resize(t, max(size, round(h * scale)), max(size, round(w * scale)))
        top, left = (t.shape[-2] - size) // 2, (t.shape[-1] - size) // 2
        out.append(t[..., top : top + size, left : left + size])
    return _normalise(out, mean, std)


def _uniform(ids: np.ndarray, seed: int, epoch: int, draw: int) -> np.ndarray:
    """A uniform [0, 1) number per id, independent across (seed, epoch, draw)."""
    key = mix64(np.asarray(ids, dtype=np.int64), seed)
    return (mix64(key, epoch * 16 + draw) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def crop_params(
    ids: np.ndarray, heights: np.ndarray, widths: np.ndarray, seed: int, epoch: int,
    scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> dict[str, np.ndarray]:
    """Random-resized-crop boxes (`crop_top`, `crop_left`, `crop_height`, `crop_width`) and `flip`
    per image, from (seed, epoch, id): the area is drawn from `scale`, the aspect log-uniformly
    from `ratio`, and the box clipped to the image (no rejection loop, so one draw per image)."""
    area = heights * widths * (scale[0] + (scale[1] - scale[0]) * _uniform(ids, seed, epoch, 0))
    aspect = np.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * _uniform(ids, seed, epoch, 1))
    crop_w = np.clip(np.round(np.sqrt(area * aspect)), 1, widths).astype(np.int64)
    crop_h = np.clip(np.round(np.sqrt(area / aspect)), 1, heights).astype(np.int64)
    top = np.floor(_uniform(ids, seed, epoch, 2) * (heights - crop_h + 1)).astype(np.int64)
    left = np.floor(_uniform(ids, seed, epoch, 3) * (widths - crop_w + 1)).astype(np.int64)
    return {"crop_top": top, "crop_left": left, "crop_height": crop_h, "crop_width": crop_w, "flip": _uniform(ids, seed, epoch, 4) < 0.5}


def train_transform(
    images: Sequence[np.ndarray], params: dict[str, np.ndarray], size: int, mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """RGB images → (B, 3·size·size) float32 under `crop_params`: crop, resize to size×size, flip, normalise."""
    out = []
    for i, image in enumerate(images):
        top, left = int(params["crop_top"][i]), int(params["crop_left"][i])
        t = _tensor(image[top : top + int(params["crop_height"][i]), left : left + int(params["crop_width"][i])])
        t = _resize(t, size, size)
        out.append(t.flip(-1) if params["flip"][i] else t)
    return _normalise(out, mean, std)
