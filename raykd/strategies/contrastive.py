"""ContrastiveBased distillation (contrastive representation distillation, CRD)."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy, check_pairs, feature_pairs
from raykd.strategies.functional import check_positive_int, check_temperature, check_unit_interval
from raykd.strategies.registry import register

__all__ = ["ContrastiveBased", "nce_loss"]

_EPS = 1e-7


def nce_loss(scores: torch.Tensor, n_data: int) -> torch.Tensor:
    """The NCE loss of CRD (Tian et al. 2020, eq. 18) with a uniform noise distribution Pn = 1/n_data.

    `scores` (B, K+1) are the normalised similarities P = exp(vᵀm / τ) / Z; column 0 is the positive.
    loss = −[Σ_b log(P_pos / (P_pos + K·Pn)) + Σ_{b,k} log(K·Pn / (P_neg + K·Pn))] / B
    """
    k = scores.shape[1] - 1
    noise = k / float(n_data)
    pos, neg = scores[:, 0], scores[:, 1:]
    log_d1 = torch.log(pos / (pos + noise + _EPS))
    log_d0 = torch.log(noise / (neg + noise + _EPS))
    return -(log_d1.sum() + log_d0.sum()) / scores.shape[0]


class _Embed(nn.Module):
    """Linear projection followed by L2 normalisation: (B, ·) -> (B, feat_dim)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(x.flatten(1)), dim=1)


@register("ContrastiveBased")
class ContrastiveBased(Strategy):
    """Tian, Krishnan & Isola 2020, "Contrastive Representation Distillation" (CRD).

    loss = weight · [NCE(student anchor vs teacher memory) + NCE(teacher anchor vs student memory)]

    The last features (or the one `pairs` entry) pass through linear embedding heads with L2
    normalisation (feat_dim=128). Two memory banks hold one unit vector per training sample
    (`n_data` rows) for each side, updated with momentum 0.5 after every training step; each
    positive is contrasted against `nce_k` negatives drawn from the other side's bank. Scores
    exp(vᵀm/τ) are divided by a constant Z fixed on the first batch, as in the authors' code.

    Call with the samples' dataset indices: `strategy(student, teacher, index=idx)` with idx (B,)
    in [0, n_data). Negatives are drawn uniformly unless `contrast_index` (B, nce_k + 1), whose
    column 0 is the positive's index, is given (the authors' "exact" mode draws them from other
    classes in the data loader). The memory is updated only in training mode.
    Defaults: the paper's τ=0.07, momentum 0.5, K=16384, and the benchmark's β=0.8 as `weight`.
    """

    requires = frozenset({"features", "index"})

    def __init__(
        self,
        n_data: int,
        pairs: Sequence[tuple[str, str]] | None = None,
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        feat_dim: int = 128,
        nce_k: int = 16384,
        nce_t: float = 0.07,
        momentum: float = 0.5,
        weight: float = 0.8,
    ) -> None:
        super().__init__(weight)
        self.n_data = check_positive_int("n_data", n_data)
        self.feat_dim = check_positive_int("feat_dim", feat_dim)
        self.nce_k = check_positive_int("nce_k", nce_k)
        self.nce_t = check_temperature("nce_t", nce_t)
        self.momentum = check_unit_interval("momentum", momentum)
        self.pairs = check_pairs(pairs)
        if self.pairs is not None and len(self.pairs) != 1:
            raise ValueError(f"ContrastiveBased uses one layer pair (the embedding), got {len(self.pairs)}")
        self.embed_student: nn.Module | None = None
        self.embed_teacher: nn.Module | None = None
        if (student_dim is None) != (teacher_dim is None):
            raise ValueError("give both student_dim and teacher_dim, or neither (to infer them)")
        if student_dim is not None and teacher_dim is not None:
            self.embed_student = _Embed(check_positive_int("student_dim", student_dim), self.feat_dim)
            self.embed_teacher = _Embed(check_positive_int("teacher_dim", teacher_dim), self.feat_dim)
        stdv = 1.0 / math.sqrt(self.feat_dim / 3.0)
        self.register_buffer("memory_student", torch.rand(self.n_data, self.feat_dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_teacher", torch.rand(self.n_data, self.feat_dim).mul_(2 * stdv).add_(-stdv))
        # Normalisation constants Z, fixed on the first batch (negative = not set yet).
        self.register_buffer("z_student", torch.tensor(-1.0))
        self.register_buffer("z_teacher", torch.tensor(-1.0))

    def _build(self, student: ModelOutput, teacher: ModelOutput) -> None:
        if self.embed_student is not None:
            return
        (p,) = feature_pairs(student, teacher, self.pairs, default="last")
        self.embed_student = _Embed(p.student[0].numel(), self.feat_dim).to(p.student.device, p.student.dtype)
        self.embed_teacher = _Embed(p.teacher[0].numel(), self.feat_dim).to(p.student.device, p.student.dtype)

    def _check_index(self, index: torch.Tensor | None, batch: int) -> torch.Tensor:
        if index is None:
            raise ValueError(
                "ContrastiveBased needs the samples' dataset indices: call strategy(student, teacher, index=idx)"
            )
        index = torch.as_tensor(index).long().flatten()
        if index.numel() != batch:
            raise ValueError(f"index has {index.numel()} entries but the batch has {batch} samples")
        if bool((index < 0).any()) or bool((index >= self.n_data).any()):
            raise ValueError(f"index values must lie in [0, n_data={self.n_data})")
        return index

    def forward(
        self,
        student: ModelOutput,
        teacher: ModelOutput,
        labels: torch.Tensor | None = None,
        index: torch.Tensor | None = None,
        contrast_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        (p,) = feature_pairs(student, teacher, self.pairs, default="last")
        batch = p.student.shape[0]
        index = self._check_index(index, batch).to(self.memory_student.device)
        self._build(student, teacher)
        assert self.embed_student is not None and self.embed_teacher is not None
        v_s = self.embed_student(p.student)  # (B, feat_dim)
        v_t = self.embed_teacher(p.teacher)  # (B, feat_dim)

        if contrast_index is None:
            contrast_index = torch.randint(0, self.n_data, (batch, self.nce_k + 1), device=index.device)
            contrast_index[:, 0] = index
        else:
            contrast_index = torch.as_tensor(contrast_index).long().to(index.device)
            if contrast_index.dim() != 2 or contrast_index.shape[0] != batch or contrast_index.shape[1] < 2:
                raise ValueError(
                    f"contrast_index must have shape (batch, K + 1) with K >= 1, got {tuple(contrast_index.shape)}"
                )
            if bool((contrast_index < 0).any()) or bool((contrast_index >= self.n_data).any()):
                raise ValueError(f"contrast_index values must lie in [0, n_data={self.n_data})")

        # Student anchor against the teacher's memory, and the teacher anchor against the student's.
        mem_t = self.memory_teacher[contrast_index].detach().to(v_s.dtype)  # (B, K+1, feat_dim)
        mem_s = self.memory_student[contrast_index].detach().to(v_t.dtype)
        out_s = torch.exp(torch.bmm(mem_t, v_s.unsqueeze(2)).squeeze(2) / self.nce_t)  # (B, K+1)
        out_t = torch.exp(torch.bmm(mem_s, v_t.unsqueeze(2)).squeeze(2) / self.nce_t)
        if self.z_student < 0:
            self.z_student.fill_(float(out_s.detach().mean()) * self.n_data)
        if self.z_teacher < 0:
            self.z_teacher.fill_(float(out_t.detach().mean()) * self.n_data)
        loss = nce_loss(out_s / self.z_student, self.n_data) + nce_loss(out_t / self.z_teacher, self.n_data)

        if self.training:
            with torch.no_grad():
                for memory, v in ((self.memory_student, v_s), (self.memory_teacher, v_t)):
                    updated = memory[index] * self.momentum + v.detach().to(memory.dtype) * (1.0 - self.momentum)
                    memory.index_copy_(0, index, F.normalize(updated, dim=1))
        return self.weight * loss
