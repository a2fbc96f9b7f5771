"""Top-k soft targets: encode teacher logits compactly, decode them back to dense logits.

Values are the teacher's raw (temperature-free) logits at the k largest classes, stored as
float16; indices use the smallest unsigned type that holds the class count. Decoding puts -inf at
the classes that were not kept, so softmax at any temperature renormalises over the k kept
classes; with k = num_classes the decode is exact up to float16 rounding.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["index_dtype", "encode_topk", "decode_topk", "check_k"]


def index_dtype(num_classes: int) -> np.dtype:
    """The smallest integer type that holds every class index."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if num_classes - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def check_k(k: int, num_classes: int) -> int:
    if not 1 <= k <= num_classes:
        raise ValueError(f"soft_targets.k must be in [1, num_classes={num_classes}], got {k}")
    return k


def encode_topk(logits: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, C) logits -> values (B, k) float16 and indices (B, k), largest first.

    Runs on the logits' device so only B·k numbers leave a GPU.
    """
    if logits.ndim != 2:
        raise ValueError(f"teacher logits must be (batch, classes), got shape {tuple(logits.shape)}")
    num_classes = logits.shape[1]
    check_k(k, num_classes)
    if not torch.isfinite(logits).all():
        raise ValueError("teacher logits contain NaN or inf; the teacher is broken or its inputs are")
    values, indices = torch.topk(logits.float(), k, dim=1, sorted=True)
    return (
        values.to(torch.float16).cpu().numpy(),
        indices.cpu().numpy().astype(index_dtype(num_classes)),
    )


def decode_topk(values: torch.Tensor, indices: torch.Tensor, num_classes: int) -> torch.Tensor:
    """values (B, k), indices (B, k) -> dense (B, C) float32 logits with -inf where not kept."""
    if values.shape != indices.shape:
        raise ValueError(f"topk_values {tuple(values.shape)} and topk_indices {tuple(indices.shape)} differ in shape")
    dense = torch.full((values.shape[0], num_classes), float("-inf"), dtype=torch.float32, device=values.device)
    return dense.scatter_(1, indices.long(), values.float())
