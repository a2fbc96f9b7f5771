"""Curriculum teacher: samples ordered easy → hard by the teacher, revealed by a pacing schedule.

Difficulty is the teacher's loss on the label (`score="loss"`) or one minus its top-1 confidence
(`score="confidence"`, needs no labels) — the "transfer teacher" scoring of Hacohen & Weinshall 2019.
`fraction(epoch)` is the share of the ordered data available at a 0-based epoch:
- linear: f0 + (1 - f0) * e / E
- root:   sqrt(f0² + (1 - f0²) * e / E)   (Platanios et al. 2019, competence-based curriculum)
- step:   f0 + (1 - f0) * floor(e / (E / num_steps)) / num_steps
capped at 1, where E = `full_at_epoch` (the epoch from which all data is used).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import nn

from raykd.outputs import ModelOutput
from raykd.teachers.base import Requirements, Teacher
from raykd.teachers.common import as_teacher, teacher_from_checkpoint, to_tensor
from raykd.teachers.registry import register

__all__ = ["CurriculumTeacher", "PACINGS", "SCORES", "check_pacing", "difficulty", "pacing_fraction"]

PACINGS = ("linear", "root", "step")
SCORES = ("confidence", "loss")


def pacing_fraction(epoch: int, pacing: str, start_fraction: float, full_at_epoch: int, num_steps: int = 4) -> float:
    """Share of the (easy → hard) data available at `epoch` (0-based)."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    f0, big_e = start_fraction, max(1, full_at_epoch)
    progress = min(1.0, epoch / big_e)
    if pacing == "linear":
        f = f0 + (1 - f0) * progress
    elif pacing == "root":
        f = math.sqrt(f0 * f0 + (1 - f0 * f0) * progress)
    elif pacing == "step":
        f = f0 + (1 - f0) * math.floor(progress * num_steps) / num_steps
    else:
        raise ValueError(f"pacing must be one of {PACINGS}, got {pacing!r}")
    return min(1.0, f)


def difficulty(logits: torch.Tensor, labels: torch.Tensor | None, score: str) -> torch.Tensor:
    """(B, C) teacher logits (+ (B,) labels) → (B,) difficulty, higher is harder: the teacher's loss
    on the label (`score="loss"`, when labels are given) or one minus its top-1 confidence."""
    logits = logits.float()
    if score == "loss" and labels is not None:
        return nn.functional.cross_entropy(logits, to_tensor(labels).long().to(logits.device), reduction="none")
    return 1.0 - logits.softmax(-1).max(-1).values


def check_pacing(pacing: str = "linear", start_fraction: float = 0.25, full_at_epoch: int = 5, num_steps: int = 4, score: str = "loss") -> None:
    """The pacing and scoring a curriculum accepts, whether the teacher or the training loop paces."""
    if pacing not in PACINGS:
        raise ValueError(f"Curriculum pacing must be one of {PACINGS}, got {pacing!r}")
    if score not in SCORES:
        raise ValueError(f"Curriculum score must be one of {SCORES}, got {score!r}")
    if not 0 < start_fraction <= 1:
        raise ValueError(f"Curriculum start_fraction must be in (0, 1], got {start_fraction}")
    if full_at_epoch < 1 or num_steps < 1:
        raise ValueError(f"Curriculum needs full_at_epoch, num_steps >= 1; got {full_at_epoch}, {num_steps}")


@register("Curriculum")
class CurriculumTeacher(Teacher):
    """Wraps a teacher; `order(inputs, labels)` ranks a dataset, `subset(epoch)` paces it.

    Calling the teacher on a batch returns the wrapped teacher's output with a (B,) `difficulty`
    attribute (higher is harder); `difficulty_feature=True` also appends it as
    `features["difficulty"]` (kept out by default so "the last feature" stays the embedding).
    """

    kind = "Curriculum"

    def __init__(
        self,
        teacher: Teacher | nn.Module,
        pacing: str = "linear",
        start_fraction: float = 0.25,
        full_at_epoch: int = 5,
        num_steps: int = 4,
        score: str = "loss",
        batch_size: int = 1024,
        num_classes: int | None = None,
        difficulty_feature: bool = False,
    ) -> None:
        super().__init__()
        self.difficulty_feature = difficulty_feature
        check_pacing(pacing, start_fraction, full_at_epoch, num_steps, score)
        if batch_size < 1:
            raise ValueError(f"Curriculum needs batch_size >= 1, got {batch_size}")
        self.teacher = as_teacher(teacher, num_classes=num_classes)
        self.num_classes = self.teacher.num_classes
        self.pacing, self.start_fraction, self.full_at_epoch = pacing, start_fraction, full_at_epoch
        self.num_steps, self.score, self.batch_size = num_steps, score, batch_size
        self.ordered: torch.Tensor | None = None  # indices easy → hard, set by order()
        self.difficulty_sorted: torch.Tensor | None = None

    @classmethod
    def from_config(
        cls,
        checkpoint: str,
        pacing: str = "linear",
        start_fraction: float = 0.25,
        full_at_epoch: int = 5,
        num_steps: int = 4,
        score: str = "loss",
        batch_size: int = 1024,
        layers: Iterable[str] = (),
    ) -> "CurriculumTeacher":
        return cls(teacher_from_checkpoint(checkpoint, layers=layers), pacing=pacing, start_fraction=start_fraction,
                   full_at_epoch=full_at_epoch, num_steps=num_steps, score=score, batch_size=batch_size)

    def difficulty(self, logits: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C) teacher logits (+ (B,) labels) → (B,) difficulty, higher is harder."""
        return difficulty(logits, labels, self.score)

    @torch.no_grad()
    def scores(self, inputs: Any, labels: Any = None) -> torch.Tensor:
        """(N,) difficulty of a whole dataset, scored in batches of `batch_size`."""
        if self.score == "loss" and labels is None:
            raise ValueError("Curriculum score='loss' needs labels; pass labels= or use score='confidence'")
        x = to_tensor(inputs)
        y = None if labels is None else to_tensor(labels).long()
        self.teacher.eval()
        out = []
        for start in range(0, x.shape[0], self.batch_size):
            logits = self.teacher(x[start : start + self.batch_size]).logits
            out.append(self.difficulty(logits, None if y is None else y[start : start + self.batch_size]).cpu())
        return torch.cat(out)

    def order(self, inputs: Any, labels: Any = None) -> torch.Tensor:
        """Indices of the dataset sorted easy → hard (stable); kept for `subset`."""
        d = self.scores(inputs, labels)
        self.difficulty_sorted, self.ordered = torch.sort(d, stable=True)
        return self.ordered

    def fraction(self, epoch: int) -> float:
        return pacing_fraction(epoch, self.pacing, self.start_fraction, self.full_at_epoch, self.num_steps)

    def subset(self, epoch: int) -> torch.Tensor:
        """The easiest ceil(fraction(epoch) * N) indices for this epoch."""
        if self.ordered is None:
            raise RuntimeError("call curriculum.order(inputs, labels) before subset(epoch)")
        n = self.ordered.numel()
        k = max(1, math.ceil(self.fraction(epoch) * n))
        return self.ordered[:k]

    def forward(self, inputs: Any, labels: Any = None) -> ModelOutput:
        out = self.teacher(inputs)
        result = ModelOutput(logits=out.logits, features=out.features.copy(), hidden_states=out.hidden_states, attentions=out.attentions)
        use_labels = labels if self.score == "loss" else None
        difficulty = self.difficulty(out.logits, use_labels)
        result.difficulty = difficulty  # type: ignore[attr-defined]  # documented extra attribute
        if self.difficulty_feature:
            result.features["difficulty"] = difficulty
        return result

    def requirements(self) -> Requirements:
        return self.teacher.requirements()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "pacing": self.pacing,
            "start_fraction": self.start_fraction,
            "full_at_epoch": self.full_at_epoch,
            "score": self.score,
            "teacher": self.teacher.describe(),
        }
