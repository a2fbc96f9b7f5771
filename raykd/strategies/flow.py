"""FlowBased distillation (flow of solution procedure, FSP)."""

from __future__ import annotations

from typing import Sequence

import torch

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy, check_pairs, feature_pairs
from raykd.strategies.functional import check_ndim, pool_to_smaller
from raykd.strategies.registry import register

__all__ = ["FlowBased", "fsp_matrix"]


def fsp_matrix(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """G[b, i, j] = Σ_hw first[b, i, h, w] · second[b, j, h, w] / (H·W): (B, C1, H, W), (B, C2, H, W) -> (B, C1, C2).

    The larger map is average-pooled to the smaller spatial size first.
    """
    first, second = pool_to_smaller(first, second)
    a, b = first.flatten(2), second.flatten(2)  # (B, C1, N), (B, C2, N)
    return a @ b.transpose(1, 2) / a.shape[-1]


@register("FlowBased")
class FlowBased(Strategy):
    """Yim, Joo, Bae & Kim 2017, "A Gift from Knowledge Distillation: Fast Optimization, Network
    Minimization and Transfer Learning" (FSP).

    loss = weight · Σ_k mean((G_s^k − G_t^k)²),   G^k = FSP(layer k, layer k+1)

    The FSP ("flow of solution procedure") matrices are built between consecutive entries of the
    layer pairs (features in order by default, so at least two are needed); the student and
    teacher must have the same channel counts at each paired layer. The paper sums the squared
    entries (‖G_s − G_t‖²₂ per sample); like the CRD benchmark we average them, and its β=50 is the
    default weight. The paper uses this
    loss as a first stage that initialises the student before normal training; to reproduce that,
    put it in a Hybrid with a step schedule ({"kind": "step", "start": 1, "end": 0, "at": E}).
    """

    requires = frozenset({"features"})

    def __init__(self, pairs: Sequence[tuple[str, str]] | None = None, weight: float = 50.0) -> None:
        super().__init__(weight)
        self.pairs = check_pairs(pairs)
        if self.pairs is not None and len(self.pairs) < 2:
            raise ValueError(
                f"FlowBased needs at least 2 layer pairs (FSP links consecutive layers), got {len(self.pairs)}"
            )

    def forward(self, student: ModelOutput, teacher: ModelOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        pairs = feature_pairs(student, teacher, self.pairs)
        if len(pairs) < 2:
            raise ValueError(f"FlowBased needs at least 2 layer pairs (FSP links consecutive layers), got {len(pairs)}")
        for p in pairs:
            check_ndim(f"student feature {p.student_name!r}", p.student, (4,))
            check_ndim(f"teacher feature {p.teacher_name!r}", p.teacher, (4,))
            if p.student.shape[1] != p.teacher.shape[1]:
                raise ValueError(
                    f"FSP needs equal channel counts: student {p.student_name!r} has {p.student.shape[1]}, "
                    f"teacher {p.teacher_name!r} has {p.teacher.shape[1]}"
                )
        total = pairs[0].student.new_zeros(())
        for lo, hi in zip(pairs[:-1], pairs[1:]):
            g_s = fsp_matrix(lo.student, hi.student)
            g_t = fsp_matrix(lo.teacher, hi.teacher)
            total = total + (g_s - g_t).pow(2).mean()
        return self.weight * total
