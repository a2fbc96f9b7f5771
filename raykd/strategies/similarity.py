"""SimilarityPreserving distillation."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy, check_pairs, feature_pairs
from raykd.strategies.registry import register

__all__ = ["SimilarityPreserving", "similarity_matrix"]


def similarity_matrix(feature: torch.Tensor) -> torch.Tensor:
    """G = row-wise L2-normalised F·Fᵀ for F the (B, ·) feature flattened to (B, D): (B, B)."""
    f = feature.flatten(1)
    return F.normalize(f @ f.t(), p=2, dim=1)


@register("SimilarityPreserving")
class SimilarityPreserving(Strategy):
    """Tung & Mori 2019, "Similarity-Preserving Knowledge Distillation".

    loss = weight · Σ_pairs ‖G_s − G_t‖²_F / B²,   G = normalize_rows(F Fᵀ)

    The paper applies it at the end of the last convolutional stage, so by default the last feature
    of each model is used (the sum over `pairs` otherwise). Widths may differ: G is B × B.
    Default weight: the CRD benchmark's β=3000 (the paper's γ on CIFAR-10).
    """

    requires = frozenset({"features"})

    def __init__(self, pairs: Sequence[tuple[str, str]] | None = None, weight: float = 3000.0) -> None:
        super().__init__(weight)
        self.pairs = check_pairs(pairs)

    def forward(self, student: ModelOutput, teacher: ModelOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        pairs = feature_pairs(student, teacher, self.pairs, default="last")
        total = pairs[0].student.new_zeros(())
        for p in pairs:
            b = p.student.shape[0]
            total = total + (similarity_matrix(p.student) - similarity_matrix(p.teacher)).pow(2).sum() / (b * b)
        return self.weight * total
