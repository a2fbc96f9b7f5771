"""DecoupledKD: decoupled knowledge distillation (target-class and non-target-class KD)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from raykd.outputs import ModelOutput
from raykd.schedules import Schedule
from raykd.strategies.base import Strategy
from raykd.strategies.functional import as_target, check_finite, check_same_batch, check_temperature, check_weight, weighted_mean
from raykd.strategies.registry import register

__all__ = ["DecoupledKD", "tckd_nckd"]


def tckd_nckd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    sample_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Target-class (binary) KD and non-target-class KD, each T²-scaled and averaged over the batch
    (each sample's term scaled by `sample_weight` first, when given).

    TCKD = KL(b_t ‖ b_s) with b = [p_target, 1 − p_target] at temperature T.
    NCKD = KL(p̂_t ‖ p̂_s) with p̂ the softmax over the non-target classes only.
    """
    T = temperature
    target = F.one_hot(labels, num_classes=student_logits.shape[-1]).bool()
    p_s = F.softmax(student_logits / T, dim=-1)
    p_t = F.softmax(teacher_logits / T, dim=-1)
    pt_s, pt_t = p_s[target], p_t[target]  # (B,)
    b_s = torch.stack([pt_s, 1.0 - pt_s], dim=1).clamp_min(1e-12)
    b_t = torch.stack([pt_t, 1.0 - pt_t], dim=1)
    tckd = weighted_mean((torch.special.xlogy(b_t, b_t) - b_t * torch.log(b_s)).sum(dim=1), sample_weight) * T**2
    # Drop the target class: the renormalised non-target distributions.
    masked_s = student_logits.masked_fill(target, float("-inf"))
    masked_t = teacher_logits.masked_fill(target, float("-inf"))
    log_q_s = F.log_softmax(masked_s / T, dim=-1).masked_fill(target, 0.0)
    q_t = F.softmax(masked_t / T, dim=-1)
    nckd = weighted_mean((torch.special.xlogy(q_t, q_t) - q_t * log_q_s).sum(dim=1), sample_weight) * T**2
    return tckd, nckd


@register("DecoupledKD")
class DecoupledKD(Strategy):
    """Zhao, Cui, Song, Qiu & Liang 2022, "Decoupled Knowledge Distillation" (DKD).

    loss = weight · [ce_weight · CE(s, y) + w(epoch) · (alpha · TCKD + beta · NCKD)]

    KD splits into TCKD (the binary target-vs-rest distributions) and NCKD (the distributions over
    non-target classes); DKD reweights them. Defaults follow the paper / mdistiller on CIFAR-100:
    alpha=1, beta=8, T=4, CE weight 1, and a linear warm-up of the KD part over 20 epochs,
    w = min((epoch + 1) / warmup_epochs, 1) with epochs counted from 0 by `set_epoch`; before the
    first `set_epoch` call w = 1. Labels are required. Logits (B, C), labels (B,).
    """

    requires = frozenset({"logits", "labels"})
    weighs_samples = True  # takes sample_weight= (an Adaptive teacher's per-sample weights)

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 8.0,
        temperature: float = 4.0,
        ce_weight: float = 1.0,
        warmup_epochs: int = 20,
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        self.alpha = check_weight("alpha", alpha)
        self.beta = check_weight("beta", beta)
        self.temperature = check_temperature("temperature", temperature)
        self.ce_weight = check_weight("ce_weight", ce_weight)
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}")
        self.warmup_epochs = warmup_epochs

    def warmup(self) -> float:
        if self.epoch is None or self.warmup_epochs <= 1:
            return 1.0
        # (epoch + 1) / W up to 1: a linear schedule from 1/W reaching 1 at epoch W - 1.
        w = self.warmup_epochs
        return Schedule("linear", 1.0 / w, 1.0, epochs=w - 1).value(self.epoch, w)

    def forward(
        self, student: ModelOutput, teacher: ModelOutput, labels: torch.Tensor | None = None, sample_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`sample_weight` (B,) scales each sample's TCKD and NCKD terms, not the label term."""
        if labels is None:
            raise ValueError("DecoupledKD needs labels: TCKD and NCKD split the classes at the target")
        s, t = student.logits, as_target(teacher.logits)
        check_same_batch(s, t)
        if s.shape != t.shape or s.dim() != 2:
            raise ValueError(
                f"DecoupledKD needs (B, C) logits of equal shape, got {tuple(s.shape)} and {tuple(t.shape)}"
            )
        if labels.shape != (s.shape[0],):
            raise ValueError(f"labels must have shape ({s.shape[0]},), got {tuple(labels.shape)}")
        check_finite("student logits", s)
        check_finite("teacher logits", t)
        tckd, nckd = tckd_nckd(s, t, labels, self.temperature, sample_weight)
        loss = self.warmup() * (self.alpha * tckd + self.beta * nckd)
        if self.ce_weight:
            loss = loss + self.ce_weight * F.cross_entropy(s, labels)
        return self.weight * loss
