"""DetectionDistillation: classification, box-regression and FPN-feature distillation for detectors."""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy, check_pairs, feature_pairs
from raykd.strategies.functional import (
    as_target,
    check_finite,
    check_same_batch,
    check_temperature,
    check_unit_interval,
    check_weight,
)
from raykd.strategies.registry import register

__all__ = ["DetectionDistillation", "bernoulli_kl", "importance_mask"]


def bernoulli_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Element-wise KL(σ(t/T) ‖ σ(s/T)) between per-class sigmoid probabilities (zero when s == t).

    Its gradient equals that of the binary cross-entropy against the teacher's soft targets.
    """
    p_t = torch.sigmoid(teacher_logits / temperature)
    log_p_s, log_q_s = F.logsigmoid(student_logits / temperature), F.logsigmoid(-student_logits / temperature)
    log_p_t, log_q_t = F.logsigmoid(teacher_logits / temperature), F.logsigmoid(-teacher_logits / temperature)
    return p_t * (log_p_t - log_p_s) + (1.0 - p_t) * (log_q_t - log_q_s)


def importance_mask(teacher_feature: torch.Tensor) -> torch.Tensor:
    """Spatial importance from the teacher: mean_c |f|, scaled per image so its maximum is 1.

    (B, C, H, W) -> (B, 1, H, W)
    """
    m = teacher_feature.abs().mean(dim=1, keepdim=True)
    return m / m.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)


@register("DetectionDistillation")
class DetectionDistillation(Strategy):
    """Detector distillation after Chen et al. 2017, "Learning Efficient Object Detection Models with
    Knowledge Distillation", and Wang et al. 2019, "Distilling Object Detectors with Fine-grained
    Feature Imitation".

    loss = weight · [cls_weight · T² · mean KL_Bernoulli(σ(t/T) ‖ σ(s/T))
                     + box_weight · Σ_masked SmoothL1(b_s, b_t) / (4 · #masked)
                     + feature_weight · Σ_levels Σ M·(a(f_s) − f_t)² / (C · Σ M)]

    Classification: `logits` (B, N, C) per-anchor class logits, compared per class with sigmoids at
    temperature T. Boxes: the feature named `box_key` (B, N, 4) of each output; only anchors in the
    mask count: `box_mask` (B, N) passed at call time, or else anchors where the teacher's highest
    class probability exceeds `score_threshold`. FPN: the (B, C, H, W) features in `fpn_pairs`
    (default: every 4D feature except `box_key`, paired in order), each weighted by the teacher's
    spatial importance mask M and passed through a 1x1-conv adapter a (built from shapes when the
    channels differ). The feature-imitation papers pick their own masks; this one needs no boxes.
    No single paper fixes T: 2 by default.
    """

    requires = frozenset({"logits", "features"})

    def __init__(
        self,
        temperature: float = 2.0,
        cls_weight: float = 1.0,
        box_weight: float = 1.0,
        feature_weight: float = 1.0,
        box_key: str | None = "boxes",
        fpn_pairs: Sequence[tuple[str, str]] | None = None,
        score_threshold: float = 0.5,
        adapter: Literal["auto", "always"] = "auto",
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        self.temperature = check_temperature("temperature", temperature)
        self.cls_weight = check_weight("cls_weight", cls_weight)
        self.box_weight = check_weight("box_weight", box_weight)
        self.feature_weight = check_weight("feature_weight", feature_weight)
        self.score_threshold = check_unit_interval("score_threshold", score_threshold)
        if adapter not in ("auto", "always"):
            raise ValueError(f"adapter must be 'auto' or 'always', got {adapter!r}")
        self.box_key, self.adapter = box_key, adapter
        self.fpn_pairs = check_pairs(fpn_pairs)
        self.adapters = nn.ModuleList()

    def _fpn(self, student: ModelOutput, teacher: ModelOutput) -> list:
        if self.fpn_pairs is not None:
            return feature_pairs(student, teacher, self.fpn_pairs)
        s_names = [n for n, f in student.features.items() if n != self.box_key and f.dim() == 4]
        t_names = [n for n, f in teacher.features.items() if n != self.box_key and f.dim() == 4]
        if len(s_names) != len(t_names):
            raise ValueError(
                f"cannot pair FPN levels in order: student {s_names}, teacher {t_names}; pass fpn_pairs=[...]"
            )
        if not s_names:
            raise ValueError(
                "feature_weight > 0 but neither output has (B, C, H, W) FPN features; set feature_weight=0"
            )
        return feature_pairs(student, teacher, list(zip(s_names, t_names)))

    def _build(self, student: ModelOutput, teacher: ModelOutput) -> None:
        if len(self.adapters) or not self.feature_weight:
            return
        for p in self._fpn(student, teacher):
            c_s, c_t = p.student.shape[1], p.teacher.shape[1]
            if self.adapter == "auto" and c_s == c_t:
                self.adapters.append(nn.Identity())
            else:
                self.adapters.append(nn.Conv2d(c_s, c_t, kernel_size=1).to(p.student.device, p.student.dtype))

    def forward(
        self,
        student: ModelOutput,
        teacher: ModelOutput,
        labels: torch.Tensor | None = None,
        box_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        s, t = student.logits, as_target(teacher.logits)
        check_same_batch(s, t)
        if s.shape != t.shape:
            raise ValueError(f"student class logits {tuple(s.shape)} and teacher {tuple(t.shape)} differ in shape")
        check_finite("student logits", s)
        check_finite("teacher logits", t)
        T = self.temperature
        loss = s.new_zeros(())
        if self.cls_weight:
            loss = loss + self.cls_weight * bernoulli_kl(s, t, T).mean() * T**2

        if self.box_weight and self.box_key is not None:
            b_s, b_t = student.feature(self.box_key), as_target(teacher.feature(self.box_key))
            if b_s.shape != b_t.shape:
                raise ValueError(
                    f"student boxes {tuple(b_s.shape)} and teacher boxes {tuple(b_t.shape)} differ in shape"
                )
            check_finite("student boxes", b_s)
            check_finite("teacher boxes", b_t)
            if box_mask is None:
                box_mask = torch.sigmoid(t).amax(dim=-1) > self.score_threshold  # (B, N)
            if box_mask.shape != b_s.shape[:-1]:
                raise ValueError(f"box_mask must have shape {tuple(b_s.shape[:-1])}, got {tuple(box_mask.shape)}")
            m = box_mask.to(b_s.dtype).unsqueeze(-1)  # (B, N, 1)
            per = F.smooth_l1_loss(b_s, b_t, reduction="none") * m
            loss = loss + self.box_weight * per.sum() / (m.sum() * b_s.shape[-1]).clamp_min(1.0)

        if self.feature_weight:
            pairs = self._fpn(student, teacher)
            self._build(student, teacher)
            if len(pairs) != len(self.adapters):
                raise ValueError(
                    f"this DetectionDistillation was built for {len(self.adapters)} FPN levels, got {len(pairs)}"
                )
            for p, adapt in zip(pairs, self.adapters):
                f_s, f_t = adapt(p.student), p.teacher
                if f_s.shape != f_t.shape:
                    raise ValueError(
                        f"FPN level {p.student_name!r} {tuple(f_s.shape)} and teacher {p.teacher_name!r} "
                        f"{tuple(f_t.shape)} differ after the adapter"
                    )
                mask = importance_mask(f_t)  # (B, 1, H, W)
                loss = loss + self.feature_weight * ((f_s - f_t).pow(2) * mask).sum() / (
                    f_t.shape[1] * mask.sum()
                ).clamp_min(1e-12)
        return self.weight * loss
