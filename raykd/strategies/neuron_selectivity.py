"""NeuronSelectivity distillation (NST)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy, check_pairs, feature_pairs
from raykd.strategies.functional import check_ndim, pool_to_smaller
from raykd.strategies.registry import register

__all__ = ["NeuronSelectivity", "polynomial_mmd"]


def polynomial_mmd(student: torch.Tensor, teacher: torch.Tensor, degree: int = 2, c: float = 0.0) -> torch.Tensor:
    """Squared MMD between the channel distributions of (B, C_s, N) and (B, C_t, N), averaged over the batch.

    Each channel's N activations are L2-normalised; k(x, y) = (xᵀy + c)^degree.
    MMD² = mean k(t, t) + mean k(s, s) − 2 mean k(s, t).
    """
    s, t = F.normalize(student, dim=2), F.normalize(teacher, dim=2)

    def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a @ b.transpose(1, 2) + c).pow(degree).mean()

    return k(t, t) + k(s, s) - 2.0 * k(s, t)


@register("NeuronSelectivity")
class NeuronSelectivity(Strategy):
    """Huang & Wang 2017, "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer".

    loss = weight · Σ_pairs MMD²(student channels, teacher channels), polynomial kernel d=2, c=0

    Each channel of a (B, C, H, W) map is a sample of H·W activations, L2-normalised; the larger map
    is pooled to the smaller spatial size first. Channel counts may differ. Default weight: the CRD
    benchmark's β=50. Features pair up in order unless `pairs` are given.
    """

    requires = frozenset({"features"})

    def __init__(
        self, pairs: Sequence[tuple[str, str]] | None = None, degree: int = 2, c: float = 0.0, weight: float = 50.0
    ) -> None:
        super().__init__(weight)
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
            raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
        self.pairs = check_pairs(pairs)
        self.degree, self.c = degree, float(c)

    def forward(self, student: ModelOutput, teacher: ModelOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        pairs = feature_pairs(student, teacher, self.pairs)
        total = pairs[0].student.new_zeros(())
        for p in pairs:
            check_ndim(f"student feature {p.student_name!r}", p.student, (4,))
            check_ndim(f"teacher feature {p.teacher_name!r}", p.teacher, (4,))
            s, t = pool_to_smaller(p.student, p.teacher)
            total = total + polynomial_mmd(s.flatten(2), t.flatten(2), self.degree, self.c)
        return self.weight * total
