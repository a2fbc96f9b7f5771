"""Top-k soft targets: encode teacher logits compactly, decode them back to dense logits.

Values are the teacher's raw (temperature-free) logits at the k largest classes, stored as
float16; indices use the smallest unsigned type that holds the class count. With k = num_classes
either decode is exact up to float16 rounding. With k < num_classes, `decode_topk` offers two
readings of the missing classes (see its docstring):

- ``renormalize``: the k kept classes only; -inf elsewhere.
- ``residual``: the kept classes at their true probability, the rest of the mass (from the stored
  full ``logsumexp``) spread evenly over the other classes.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from raykd.soft_targets.schema import check_k

__all__ = ["DECODE_MODES", "index_dtype", "encode_topk", "decode_topk"]

DECODE_MODES = ("renormalize", "residual")


def index_dtype(num_classes: int) -> np.dtype:
    """The smallest integer type that holds every class index."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if num_classes - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


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
    small = torch.uint8 if index_dtype(num_classes) == np.uint8 else torch.int64  # fewer bytes off a GPU
    return values.to(torch.float16).cpu().numpy(), indices.to(small).cpu().numpy().astype(index_dtype(num_classes), copy=False)


def decode_topk(
    values: torch.Tensor,
    indices: torch.Tensor,
    num_classes: int,
    *,
    mode: str = "renormalize",
    logsumexp: torch.Tensor | None = None,
) -> torch.Tensor:
    """values (B, k), indices (B, k) -> dense (B, C) float32 teacher logits for a KD loss.

    ``mode="renormalize"`` (default): the k stored logits at their classes, -inf elsewhere. For
    any temperature T, ``softmax(dense / T)`` is the teacher's ``softmax(z / T)`` restricted to
    the k kept classes and renormalised over them; the other classes get probability 0.

    ``mode="residual"``: needs ``logsumexp`` (B,), the log-sum-exp of the teacher's full logits
    (the ``logsumexp`` column). Kept classes get ``log p_i`` with ``p_i = exp(v_i - lse)``, their
    true probability; the other C - k classes share the residual ``r = 1 - Σ p_i`` evenly, each
    ``log(r / (C - k))``. The result is a log-probability vector, so at T = 1 ``softmax(dense)`` is
    exact on the kept classes (up to the float16 rounding of v) and puts exactly the true total
    mass on the rest. At T ≠ 1, ``softmax(dense / T)`` ∝ ``p_i^(1/T)``: the kept classes keep
    their correct ratios ``exp((v_i - v_j) / T)``, but the tail acts as if every other class had
    probability r / (C - k). The true tail weight ``Σ_j p_j^(1/T)`` is at most that (Jensen; equal
    only for an even tail) when T > 1, at least that when T < 1, so at T > 1 residual decoding
    overstates the tail and renormalize (tail 0) understates it; the teacher lies in between.
    If rounding makes ``Σ p_i`` reach 1, the tail gets -inf (probability 0).

    With k = C both modes give the stored logits' softmax (residual returns them as log-probs).
    """
    if values.shape != indices.shape or values.ndim != 2:
        raise ValueError(
            f"topk_values {tuple(values.shape)} and topk_indices {tuple(indices.shape)} must be the same (batch, k) shape"
        )
    if mode not in DECODE_MODES:
        raise ValueError(f"decode mode must be one of {DECODE_MODES}, got {mode!r}")
    k = values.shape[1]
    check_k(k, num_classes)
    values = values.float()
    if mode == "renormalize":
        dense = torch.full((values.shape[0], num_classes), float("-inf"), dtype=torch.float32, device=values.device)
        return dense.scatter_(1, indices.long(), values)
    if logsumexp is None:
        raise ValueError("decode mode 'residual' needs logsumexp= (the soft targets' `logsumexp` column)")
    lse = torch.as_tensor(logsumexp, device=values.device).float().reshape(-1, 1)  # (B, 1)
    if lse.shape[0] != values.shape[0]:
        raise ValueError(f"logsumexp has {lse.shape[0]} rows but topk_values has {values.shape[0]}")
    log_p = values - lse  # (B, k) log-probabilities of the kept classes
    rest = num_classes - k
    if rest == 0:
        return torch.zeros_like(log_p).scatter_(1, indices.long(), log_p)
    residual = (1.0 - log_p.exp().sum(dim=1, keepdim=True)).clamp_min(0.0)  # (B, 1)
    dense = (residual.log() - math.log(rest)).expand(-1, num_classes).contiguous()  # log(0) = -inf
    return dense.scatter_(1, indices.long(), log_p)
