"""CorrelationCongruence distillation (CC)."""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy, check_pairs, feature_pairs
from raykd.strategies.functional import check_positive_int
from raykd.strategies.registry import register

__all__ = ["CorrelationCongruence", "correlation_matrix"]


def correlation_matrix(
    embedding: torch.Tensor, kernel: Literal["gaussian", "bilinear"] = "gaussian", gamma: float = 0.4, order: int = 2
) -> torch.Tensor:
    """Sample-by-sample correlation ψ(F) of L2-normalised (B, D) embeddings: (B, B).

    "gaussian": exp(−γ‖x − y‖²) = exp(−2γ)·exp(2γ xᵀy) for unit vectors, its second factor expanded
    to the Taylor order P as in the paper: Σ_{p=0..P} exp(−2γ) (2γ)^p / p! · (xᵀy)^p.
    "bilinear": xᵀy.
    """
    f = F.normalize(embedding.flatten(1), dim=1)
    dot = f @ f.t()
    if kernel == "bilinear":
        return dot
    out = torch.zeros_like(dot)
    for p in range(order + 1):
        out = out + math.exp(-2.0 * gamma) * (2.0 * gamma) ** p / math.factorial(p) * dot.pow(p)
    return out


@register("CorrelationCongruence")
class CorrelationCongruence(Strategy):
    """Peng et al. 2019, "Correlation Congruence for Knowledge Distillation" (CC).

    loss = weight · ‖ψ(F_t) − ψ(F_s)‖²_F / B²

    ψ is the B × B correlation between the samples' L2-normalised embeddings under a Gaussian RBF
    kernel approximated by its Taylor series (the paper's choice on CIFAR: γ=0.4, P=2). Instance
    congruence (a KD term) is not included: add ResponseBased in a Hybrid. By default the last
    feature of each model is used as the embedding; widths may differ. `feat_dim` adds learnable
    linear embeddings on both sides as in the CRD benchmark's code (where CC's β=0.02, our default
    weight, was tuned for a different, approximate loss: retune when comparing).
    """

    requires = frozenset({"features"})

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]] | None = None,
        kernel: Literal["gaussian", "bilinear"] = "gaussian",
        gamma: float = 0.4,
        order: int = 2,
        feat_dim: int | None = None,
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        weight: float = 0.02,
    ) -> None:
        super().__init__(weight)
        if kernel not in ("gaussian", "bilinear"):
            raise ValueError(f"kernel must be 'gaussian' or 'bilinear', got {kernel!r}")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.order = check_positive_int("order", order)
        self.pairs = check_pairs(pairs)
        if self.pairs is not None and len(self.pairs) != 1 and feat_dim is not None:
            raise ValueError("feat_dim embeddings serve one layer pair; give a single pair")
        self.kernel, self.gamma = kernel, float(gamma)
        self.feat_dim = None if feat_dim is None else check_positive_int("feat_dim", feat_dim)
        self.embed_student: nn.Module | None = None
        self.embed_teacher: nn.Module | None = None
        if self.feat_dim is not None and student_dim is not None and teacher_dim is not None:
            self.embed_student = nn.Linear(check_positive_int("student_dim", student_dim), self.feat_dim)
            self.embed_teacher = nn.Linear(check_positive_int("teacher_dim", teacher_dim), self.feat_dim)

    def _build(self, student: ModelOutput, teacher: ModelOutput) -> None:
        if self.feat_dim is None or self.embed_student is not None:
            return
        (p,) = feature_pairs(student, teacher, self.pairs, default="last")
        kw = {"device": p.student.device, "dtype": p.student.dtype}
        self.embed_student = nn.Linear(p.student[0].numel(), self.feat_dim, **kw)
        self.embed_teacher = nn.Linear(p.teacher[0].numel(), self.feat_dim, **kw)

    def forward(self, student: ModelOutput, teacher: ModelOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        pairs = feature_pairs(student, teacher, self.pairs, default="last")
        self._build(student, teacher)
        total = pairs[0].student.new_zeros(())
        for p in pairs:
            s, t = p.student.flatten(1), p.teacher.flatten(1)
            if self.embed_student is not None and self.embed_teacher is not None:
                s, t = self.embed_student(s), self.embed_teacher(t)
            b = s.shape[0]
            diff = correlation_matrix(t, self.kernel, self.gamma, self.order) - correlation_matrix(
                s, self.kernel, self.gamma, self.order
            )
            total = total + diff.pow(2).sum() / (b * b)
        return self.weight * total
