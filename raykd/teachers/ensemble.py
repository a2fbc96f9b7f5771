"""Ensemble teacher: several teachers combined into one set of logits."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from raykd.outputs import ModelOutput
from raykd.teachers.base import Requirements, Teacher
from raykd.teachers.registry import register

__all__ = ["EnsembleTeacher", "COMBINE_MODES"]

COMBINE_MODES = ("mean_logits", "mean_probs", "vote", "weighted")


@register("Ensemble")
class EnsembleTeacher(Teacher):
    """Combines member teachers that agree on the class count.

    - `mean_logits` (default): the arithmetic mean of logits.
    - `mean_probs`: log of the mean of probabilities, so softmax of the output is the mean.
    - `vote`: log of the vote share of each class (majority vote; unvoted classes get -inf).
    - `weighted`: weighted mean of logits with explicit `weights` (normalised to sum 1).
    Features of member i come back as `member{i}.{name}`.
    """

    kind = "Ensemble"

    def __init__(self, members: Sequence[Teacher], combine: str = "mean_logits", weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("Ensemble needs at least one member teacher")
        counts = {i: int(m.num_classes) for i, m in enumerate(members)}
        if len(set(counts.values())) != 1:
            raise ValueError(
                f"ensemble members disagree on the class count: {counts} (member index: classes); "
                "every member must predict the same label set"
            )
        if combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {COMBINE_MODES}, got {combine!r}")
        if combine == "weighted":
            if weights is None or len(weights) != len(members):
                raise ValueError(f"combine='weighted' needs one weight per member ({len(members)}), got {weights}")
            if any(w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(f"ensemble weights must be non-negative with a positive sum, got {list(weights)}")
        self.members = nn.ModuleList(members)
        self.combine = combine
        w = torch.tensor(weights if weights is not None else [1.0] * len(members), dtype=torch.float32)
        self.register_buffer("weights", w / w.sum(), persistent=False)
        self.num_classes = counts[0]

    def forward(self, inputs: Any) -> ModelOutput:
        outputs = [m(inputs) for m in self.members]
        logits = torch.stack([o.logits.float() for o in outputs])  # (K, B, C)
        features = {f"member{i}.{k}": v for i, o in enumerate(outputs) for k, v in o.features.items()}
        out = ModelOutput(logits=self.combine_logits(logits))
        out.features.update(features)
        return out

    def combine_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """(K, B, C) member logits -> (B, C) ensemble logits."""
        if self.combine == "mean_logits":
            return logits.mean(0)
        if self.combine == "weighted":
            return torch.einsum("k,kbc->bc", self.weights.to(logits.dtype), logits)
        if self.combine == "mean_probs":
            return torch.logsumexp(torch.log_softmax(logits, -1), dim=0) - math.log(logits.shape[0])
        votes = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0).to(logits.dtype)
        return torch.log(votes / logits.shape[0])

    def requirements(self) -> Requirements:
        reqs = [m.requirements() for m in self.members]
        return Requirements(
            num_cpus=max(r.num_cpus for r in reqs),
            num_gpus=max(r.num_gpus for r in reqs),
            memory_bytes=sum(r.memory_bytes for r in reqs),
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "combine": self.combine, "members": [m.describe() for m in self.members]}
