"""Adaptive teacher: re-weights teaching from the student's measured errors.

The student's mistakes of the epoch (`observe`) become weights at its end (`end_epoch`): classes,
or single samples by id, that the student gets wrong weigh more in the next epoch's distillation
loss. `weight = normalise((ema_error + eps) ** power)` with the mean weight 1, so the loss scale
stays where it was; `momentum` smooths across epochs. In the spirit of focal-style re-weighting
(Lin et al. 2017) applied to what the teacher teaches; the exact rule is ours.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from raykd.outputs import ModelOutput
from raykd.teachers.base import Requirements, Teacher
from raykd.teachers.common import as_teacher, teacher_from_checkpoint, to_tensor
from raykd.teachers.registry import register

__all__ = ["AdaptiveTeacher", "AdaptiveWeights", "ADAPT_MODES"]

ADAPT_MODES = ("per_class", "per_sample")


class AdaptiveWeights(nn.Module):
    """The adaptation itself: the student's errors in, (B,) loss weights out.

    Per class (default): the weight of a sample is that of its label (or, without labels, of the
    teacher's top-1 class). Per sample: a `num_samples` table indexed by sample id, error = the
    student's cross-entropy on that sample. The training loop holds one per Ray Train worker and
    sums `accumulators()` across workers before `end_epoch`, so every worker agrees on the weights.
    """

    def __init__(
        self, num_classes: int, mode: str = "per_class", num_samples: int | None = None,
        momentum: float = 0.5, power: float = 1.0, eps: float = 0.05,
    ) -> None:  # fmt: skip
        super().__init__()
        if mode not in ADAPT_MODES:
            raise ValueError(f"Adaptive mode must be one of {ADAPT_MODES}, got {mode!r}")
        if mode == "per_sample" and (num_samples is None or num_samples < 1):
            raise ValueError("Adaptive mode='per_sample' needs num_samples= (the dataset size)")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Adaptive momentum must be in [0, 1), got {momentum}")
        if power < 0 or eps <= 0:
            raise ValueError(f"Adaptive needs power >= 0 and eps > 0, got power={power}, eps={eps}")
        self.num_classes = int(num_classes)
        self.mode, self.momentum, self.power, self.eps = mode, momentum, power, eps
        c, n = self.num_classes, num_samples or 0
        self.register_buffer("class_error", torch.zeros(c))
        self.register_buffer("class_weight", torch.ones(c))
        self.register_buffer("sample_error", torch.zeros(n))
        self.register_buffer("sample_weight", torch.ones(n))
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("_wrong", torch.zeros(c), persistent=False)
        self.register_buffer("_seen", torch.zeros(c), persistent=False)
        self.register_buffer("_loss_sum", torch.zeros(n), persistent=False)
        self.register_buffer("_loss_count", torch.zeros(n), persistent=False)

    def accumulators(self) -> list[torch.Tensor]:
        """This epoch's observed counts and sums: add them up across workers before `end_epoch`."""
        return [self._wrong, self._seen, self._loss_sum, self._loss_count]

    @torch.no_grad()
    def observe(self, student_logits: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor | None = None) -> None:
        """Accumulate the student's errors on one batch: (B, C) logits, (B,) labels, (B,) sample ids."""
        logits = to_tensor(student_logits).detach().float().to(self.class_error.device)
        labels = to_tensor(labels).long().to(logits.device)
        wrong = (logits.argmax(-1) != labels).float()
        self._wrong += torch.bincount(labels, weights=wrong, minlength=self.num_classes)[: self.num_classes]
        self._seen += torch.bincount(labels, minlength=self.num_classes)[: self.num_classes].float()
        if self.mode == "per_sample":
            if indices is None:
                raise ValueError("Adaptive mode='per_sample' needs indices= (sample ids) in observe()")
            idx = to_tensor(indices).long().to(logits.device)
            if int(idx.max()) >= self.sample_error.numel():
                raise ValueError(f"sample id {int(idx.max())} is outside the Adaptive table of num_samples={self.sample_error.numel()}")
            loss = nn.functional.cross_entropy(logits, labels, reduction="none")
            self._loss_sum.index_add_(0, idx, loss)
            self._loss_count.index_add_(0, idx, torch.ones_like(loss))

    @torch.no_grad()
    def end_epoch(self) -> dict[str, float]:
        """Turn the epoch's observed errors into new weights; returns a small summary to log."""
        seen = self._seen > 0
        rate = torch.where(seen, self._wrong / self._seen.clamp_min(1), self.class_error)
        m = self.momentum if int(self.epochs_seen) > 0 else 0.0
        self.class_error.copy_(m * self.class_error + (1 - m) * rate)
        self.class_weight.copy_(_normalise((self.class_error + self.eps) ** self.power))
        weights = self.class_weight
        if self.mode == "per_sample":
            has = self._loss_count > 0
            loss = torch.where(has, self._loss_sum / self._loss_count.clamp_min(1), self.sample_error)
            self.sample_error.copy_(m * self.sample_error + (1 - m) * loss)
            self.sample_weight.copy_(_normalise((self.sample_error + self.eps) ** self.power))
            weights = self.sample_weight
        for buf in self.accumulators():
            buf.zero_()
        self.epochs_seen += 1
        return {
            "student_error": float(self.class_error.mean()),
            "max_weight": float(weights.max()),
            "min_weight": float(weights.min()),
        }

    def weights_for(self, labels: torch.Tensor | None = None, indices: torch.Tensor | None = None, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) weights: by sample id in per-sample mode, else by label (or teacher top-1)."""
        if self.mode == "per_sample" and indices is not None:
            return self.sample_weight[to_tensor(indices).long().to(self.sample_weight.device)]
        if labels is None:
            if teacher_logits is None:
                raise ValueError("weights_for needs labels, indices or teacher_logits")
            labels = teacher_logits.argmax(-1)
        return self.class_weight[to_tensor(labels).long().to(self.class_weight.device)]


@register("Adaptive")
class AdaptiveTeacher(Teacher):
    """Wraps a teacher; its output carries the (B,) weights for the loss as `output.sample_weight`.

    The weights stay out of `features` by default, so strategies that take "the last feature" as
    the embedding are not handed them; `weight_feature=True` also puts them in
    `features["sample_weight"]` (e.g. for the soft-target writer, which stores features).
    `adapt` (an `AdaptiveWeights`) holds the tables; in a raykd run the student's loop keeps its
    own, fed by every worker, and weighs the distillation loss with them.
    """

    kind = "Adaptive"

    def __init__(
        self,
        teacher: Teacher | nn.Module,
        mode: str = "per_class",
        num_samples: int | None = None,
        momentum: float = 0.5,
        power: float = 1.0,
        eps: float = 0.05,
        num_classes: int | None = None,
        weight_feature: bool = False,
    ) -> None:
        super().__init__()
        self.weight_feature = weight_feature
        self.teacher = as_teacher(teacher, num_classes=num_classes)
        self.num_classes = self.teacher.num_classes
        self.adapt = AdaptiveWeights(self.num_classes, mode, num_samples, momentum, power, eps)
        self.mode, self.momentum, self.power = mode, momentum, power

    @classmethod
    def from_config(
        cls,
        checkpoint: str,
        mode: str = "per_class",
        num_samples: int | None = None,
        momentum: float = 0.5,
        power: float = 1.0,
        eps: float = 0.05,
        layers: Iterable[str] = (),
        weight_feature: bool = False,
    ) -> "AdaptiveTeacher":
        teacher = teacher_from_checkpoint(checkpoint, layers=layers)
        return cls(
            teacher, mode=mode, num_samples=num_samples, momentum=momentum, power=power, eps=eps,
            weight_feature=weight_feature,
        )

    @property
    def class_weight(self) -> torch.Tensor:
        return self.adapt.class_weight

    @property
    def sample_weight(self) -> torch.Tensor:
        return self.adapt.sample_weight

    @property
    def class_error(self) -> torch.Tensor:
        return self.adapt.class_error

    def observe(self, student_logits: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor | None = None) -> None:
        self.adapt.observe(student_logits, labels, indices)

    def end_epoch(self) -> dict[str, float]:
        return self.adapt.end_epoch()

    def update(self, student_logits: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor | None = None) -> dict[str, float]:
        """`observe` + `end_epoch` in one call (for an epoch's logits gathered at once)."""
        self.observe(student_logits, labels, indices)
        return self.end_epoch()

    def weights_for(self, labels: torch.Tensor | None = None, indices: torch.Tensor | None = None, teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        return self.adapt.weights_for(labels, indices, teacher_logits)

    def forward(self, inputs: Any, labels: Any = None, indices: Any = None) -> ModelOutput:
        out = self.teacher(inputs)
        result = ModelOutput(logits=out.logits, features=out.features.copy(), hidden_states=out.hidden_states, attentions=out.attentions)
        weights = self.weights_for(labels, indices, out.logits).to(out.logits.device)
        result.sample_weight = weights  # type: ignore[attr-defined]  # documented extra attribute
        if self.weight_feature:
            result.features["sample_weight"] = weights
        return result

    def requirements(self) -> Requirements:
        return self.teacher.requirements()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "mode": self.mode,
            "momentum": self.momentum,
            "power": self.power,
            "teacher": self.teacher.describe(),
            "class_weight": [round(float(w), 4) for w in self.class_weight],
        }


def _normalise(w: torch.Tensor) -> torch.Tensor:
    return w * (w.numel() / w.sum().clamp_min(1e-12)) if w.numel() else w
