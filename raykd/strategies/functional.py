"""Small pure functions shared by several losses."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from raykd.outputs import ModelOutput

__all__ = [
    "hinton_kd",
    "weighted_mean",
    "logit_pair",
    "soft_kl",
    "as_target",
    "check_temperature",
    "check_unit_interval",
    "check_finite",
    "check_same_batch",
    "check_weight",
    "check_positive_int",
    "check_ndim",
    "pool_to_smaller",
]


def check_temperature(name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return float(value)


def check_unit_interval(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """NaN anywhere, or +inf, is a bug upstream; -inf is allowed (classes dropped by top-k)."""
    if torch.isnan(tensor).any() or torch.isposinf(tensor).any():
        raise ValueError(f"{name} contains NaN or +inf; check the model or the soft-target file")


def check_same_batch(student: torch.Tensor, teacher: torch.Tensor, what: str = "logits") -> None:
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"student and teacher {what} have different batch sizes: {student.shape[0]} vs {teacher.shape[0]}"
        )


def logit_pair(student: ModelOutput, teacher: ModelOutput) -> tuple[torch.Tensor, torch.Tensor]:
    """(student logits, detached teacher logits), checked for batch size, equal shape and NaN."""
    s, t = student.logits, as_target(teacher.logits)
    check_same_batch(s, t)
    if s.shape != t.shape:
        raise ValueError(f"student logits {tuple(s.shape)} and teacher logits {tuple(t.shape)} differ in shape")
    check_finite("student logits", s)
    check_finite("teacher logits", t)
    return s, t


def hinton_kd(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, sample_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """T² · KL(p_teacher^T || p_student^T), averaged over the batch (Hinton et al. 2015);
    `sample_weight` (B,) scales each sample's term before the mean."""
    return weighted_mean(soft_kl(student_logits, teacher_logits, temperature), sample_weight) * temperature**2


def weighted_mean(per_sample: torch.Tensor, sample_weight: torch.Tensor | None) -> torch.Tensor:
    """mean(w · loss) over the batch: weights whose mean over the data is 1 keep the loss's scale."""
    if sample_weight is None:
        return per_sample.mean()
    if sample_weight.shape != per_sample.shape:
        raise ValueError(f"sample_weight must have shape {tuple(per_sample.shape)}, got {tuple(sample_weight.shape)}")
    return (per_sample * sample_weight.to(per_sample.dtype)).mean()


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(p_teacher^T || p_student^T) per sample, summed over classes: shape (B,).

    Teacher logits may hold -inf for classes a top-k file did not keep; those classes have zero
    teacher probability and contribute nothing (0 · log 0 = 0), which `xlogy` computes exactly.
    """
    log_p_student = F.log_softmax(student_logits / temperature, dim=-1)
    p_teacher = F.softmax(teacher_logits / temperature, dim=-1)
    return (torch.special.xlogy(p_teacher, p_teacher) - p_teacher * log_p_student).sum(dim=-1)


def check_weight(name: str, value: float) -> float:
    """Loss weights are finite and non-negative (0 switches a term off)."""
    value = float(value)
    if not (value >= 0.0 and value != float("inf")):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def pool_to_smaller(student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive-average-pool the larger of two (B, C, H, W) maps to the other's spatial size."""
    (sh, sw), (th, tw) = student.shape[-2:], teacher.shape[-2:]
    if (sh, sw) == (th, tw):
        return student, teacher
    size = (min(sh, th), min(sw, tw))
    if (sh, sw) != size:
        student = F.adaptive_avg_pool2d(student, size)
    if (th, tw) != size:
        teacher = F.adaptive_avg_pool2d(teacher, size)
    return student, teacher


def check_ndim(name: str, tensor: torch.Tensor, allowed: tuple[int, ...]) -> None:
    if tensor.dim() not in allowed:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {tuple(tensor.shape)}"
        )


def as_target(teacher: torch.Tensor) -> torch.Tensor:
    """A teacher tensor cut from the autograd graph, so no gradient ever reaches the teacher.

    Tensors made under `torch.inference_mode()` (as `Teacher.predict` returns them) cannot be saved
    for the student's backward pass; they are copied into ordinary tensors here.
    """
    return teacher.clone() if teacher.is_inference() else teacher.detach()
