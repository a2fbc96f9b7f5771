"""Image transforms in torch tensor ops, for Ray Data's `map_batches` (no torchvision needed).

Resize the shorter side, centre crop, normalise: what teachers and students see. Training
augmentation is replayable views of these images (`raykd.data.augment`, `soft_targets.views`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["eval_transform"]


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

