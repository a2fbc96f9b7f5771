"""FeatureBased distillation (FitNets hints)."""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy, check_pairs, check_shapes, feature_pairs
from raykd.strategies.functional import check_ndim, pool_to_smaller
from raykd.strategies.registry import register

__all__ = ["FeatureBased", "make_regressor"]


def make_regressor(student_shape: tuple[int, ...], teacher_shape: tuple[int, ...]) -> nn.Module:
    """Maps a student feature to the teacher's width: 1x1 conv + BN for (C, H, W), Linear otherwise.

    Shapes exclude the batch dimension. (L, D) token features are mapped along D.
    """
    if len(student_shape) != len(teacher_shape):
        raise ValueError(f"student feature shape {student_shape} and teacher {teacher_shape} differ in rank")
    if len(student_shape) == 3:  # (C, H, W)
        return nn.Sequential(
            nn.Conv2d(student_shape[0], teacher_shape[0], kernel_size=1, bias=False), nn.BatchNorm2d(teacher_shape[0])
        )
    if len(student_shape) in (1, 2):  # (D,) or (L, D)
        return nn.Linear(student_shape[-1], teacher_shape[-1])
    raise ValueError(f"cannot build a regressor for feature shape {student_shape}; expected (C, H, W), (L, D) or (D,)")


@register("FeatureBased")
class FeatureBased(Strategy):
    """Romero et al. 2015, "FitNets: Hints for Thin Deep Nets".

    loss = weight · Σ_pairs mean((r(s) − t)²)

    A regressor r (1x1 conv + BatchNorm for (B, C, H, W) maps, as RepDistiller's ConvReg; a Linear
    for (B, D) or (B, L, D)) maps the student's hint layer to the teacher's guided layer; the L2
    loss is the mean squared error, as in the CRD benchmark (Tian et al. 2020), whose β=100 is the
    default `weight`. Where we differ from the paper: when spatial sizes differ, the larger map is
    average-pooled to the smaller one instead of sizing the regressor's kernel to match.

    regressor="auto" builds a regressor only where the student and teacher feature shapes differ,
    "always" builds one for every pair, "never" compares features as they are. Shapes: give
    `student_shapes` / `teacher_shapes` (per pair, without batch: (C, H, W) or (D,)) to build the
    regressors now, or leave them None to build on the first call (run `materialize` or one
    forward before building the optimizer).
    """

    requires = frozenset({"features"})

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]] | None = None,
        student_shapes: object = None,
        teacher_shapes: object = None,
        regressor: Literal["auto", "always", "never"] = "auto",
        weight: float = 100.0,
    ) -> None:
        super().__init__(weight)
        if regressor not in ("auto", "always", "never"):
            raise ValueError(f"regressor must be 'auto', 'always' or 'never', got {regressor!r}")
        self.pairs = check_pairs(pairs)
        self.regressor = regressor
        self.regressors = nn.ModuleList()
        s_shapes, t_shapes = (
            check_shapes("student_shapes", student_shapes),
            check_shapes("teacher_shapes", teacher_shapes),
        )
        if (s_shapes is None) != (t_shapes is None):
            raise ValueError("give both student_shapes and teacher_shapes, or neither (to infer them)")
        if s_shapes is not None and t_shapes is not None:
            if len(s_shapes) != len(t_shapes):
                raise ValueError(f"student_shapes has {len(s_shapes)} entries but teacher_shapes {len(t_shapes)}")
            if self.pairs is not None and len(self.pairs) != len(s_shapes):
                raise ValueError(f"{len(self.pairs)} pairs but {len(s_shapes)} shapes")
            self._make(s_shapes, t_shapes)

    def _make(self, s_shapes: list[tuple[int, ...]], t_shapes: list[tuple[int, ...]]) -> None:
        for s, t in zip(s_shapes, t_shapes):
            same = s == t
            if self.regressor == "never" or (self.regressor == "auto" and same):
                self.regressors.append(nn.Identity())
            else:
                self.regressors.append(make_regressor(s, t))

    def _build(self, student: ModelOutput, teacher: ModelOutput) -> None:
        if len(self.regressors):
            return
        pairs = feature_pairs(student, teacher, self.pairs)
        self._make([tuple(p.student.shape[1:]) for p in pairs], [tuple(p.teacher.shape[1:]) for p in pairs])
        self.regressors.to(device=pairs[0].student.device, dtype=pairs[0].student.dtype)

    def forward(self, student: ModelOutput, teacher: ModelOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        pairs = feature_pairs(student, teacher, self.pairs)
        self._build(student, teacher)
        if len(pairs) != len(self.regressors):
            raise ValueError(f"this FeatureBased was built for {len(self.regressors)} layer pairs, got {len(pairs)}")
        total = pairs[0].student.new_zeros(())
        for p, reg in zip(pairs, self.regressors):
            check_ndim(f"feature {p.student_name!r}", p.student, (2, 3, 4))
            s, t = reg(p.student), p.teacher
            if s.dim() == 4 and t.dim() == 4:
                s, t = pool_to_smaller(s, t)
            if s.shape != t.shape:
                raise ValueError(
                    f"after the regressor, student feature {p.student_name!r} has shape {tuple(s.shape)} but "
                    f"teacher feature {p.teacher_name!r} has {tuple(t.shape)}; use regressor='auto' or 'always'"
                )
            total = total + F.mse_loss(s, t)
        return self.weight * total
