"""ProbabilisticTransfer distillation (PKT)."""

from __future__ import annotations

from typing import Sequence

import torch

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy, check_pairs, feature_pairs
from raykd.strategies.registry import register

__all__ = ["ProbabilisticTransfer", "cosine_conditional_probabilities"]


def cosine_conditional_probabilities(
    feature: torch.Tensor, eps: float = 1e-7, exclude_self: bool = False
) -> torch.Tensor:
    """P[i, j] = K(i, j) / Σ_k K(i, k), K = (cos + 1) / 2 the cosine kernel scaled to [0, 1]. (B, ·) -> (B, B)."""
    f = feature.flatten(1)
    f = f / (f.norm(dim=1, keepdim=True) + eps)
    kernel = (f @ f.t() + 1.0) / 2.0
    if exclude_self:
        kernel = kernel * (1.0 - torch.eye(f.shape[0], device=f.device, dtype=f.dtype))
    return kernel / kernel.sum(dim=1, keepdim=True)


@register("ProbabilisticTransfer")
class ProbabilisticTransfer(Strategy):
    """Passalis & Tefas 2018, "Learning Deep Representations with Probabilistic Knowledge Transfer".

    loss = weight · mean_ij P_t[i, j] · log((P_t[i, j] + ε) / (P_s[i, j] + ε))

    Conditional probabilities come from the cosine-similarity kernel K = (cos + 1)/2 normalised over
    each row. Like the authors' code (and the CRD benchmark's β=30000 tuned on it), each sample's
    own kernel value is kept in its row and the KL is averaged over the B² entries; the paper's
    formula leaves k = i out of the normaliser: set exclude_self=True for that.
    By default the last feature (the embedding) is used.
    """

    requires = frozenset({"features"})

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]] | None = None,
        eps: float = 1e-7,
        exclude_self: bool = False,
        weight: float = 30000.0,
    ) -> None:
        super().__init__(weight)
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.pairs = check_pairs(pairs)
        self.eps, self.exclude_self = float(eps), bool(exclude_self)

    def forward(self, student: ModelOutput, teacher: ModelOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        pairs = feature_pairs(student, teacher, self.pairs, default="last")
        total = pairs[0].student.new_zeros(())
        for p in pairs:
            ps = cosine_conditional_probabilities(p.student, self.eps, self.exclude_self)
            pt = cosine_conditional_probabilities(p.teacher, self.eps, self.exclude_self)
            total = total + (pt * torch.log((pt + self.eps) / (ps + self.eps))).mean()
        return self.weight * total
