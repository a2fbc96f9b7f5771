"""ResponseBased distillation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy
from raykd.strategies.functional import (
    check_temperature,
    check_unit_interval,
    hinton_kd,
    logit_pair,
)
from raykd.strategies.registry import register

__all__ = ["ResponseBased"]


@register("ResponseBased")
class ResponseBased(Strategy):
    """Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network".

    loss = weight · [alpha · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − alpha) · CE(s, y)]

    The T² factor keeps the soft term's gradient scale independent of T (paper, section 2).
    alpha=1 gives the pure KD term (hybrids add cross-entropy once); without labels the CE term is
    skipped and the KD term is used alone. Shapes: logits (B, C), labels (B,).
    """

    requires = frozenset({"logits"})  # labels are optional
    weighs_samples = True  # takes sample_weight= (an Adaptive teacher's per-sample weights)

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.temperature = check_temperature("temperature", temperature)
        self.alpha = check_unit_interval("alpha", alpha)

    def forward(
        self, student: ModelOutput, teacher: ModelOutput, labels: torch.Tensor | None = None, sample_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`sample_weight` (B,) scales each sample's KD term (the teaching), not the label term."""
        s, t = logit_pair(student, teacher)
        kd = hinton_kd(s, t, self.temperature, sample_weight)
        if labels is None or self.alpha == 1.0:
            return self.weight * kd
        return self.weight * (self.alpha * kd + (1.0 - self.alpha) * F.cross_entropy(s, labels))
