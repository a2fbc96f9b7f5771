"""RelationBased distillation (relational knowledge distillation)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy, check_pairs, feature_pairs
from raykd.strategies.functional import check_weight
from raykd.strategies.registry import register

__all__ = ["RelationBased", "rkd_distance", "rkd_angle"]


def _pairwise_distances(e: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (B, B) with an exact zero diagonal and a finite gradient everywhere."""
    sq = e.pow(2).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * e @ e.t()).clamp_min(1e-12)
    off_diagonal = 1.0 - torch.eye(e.shape[0], device=e.device, dtype=e.dtype)
    return d2.sqrt() * off_diagonal


def _normalised_distances(e: torch.Tensor) -> torch.Tensor:
    d = _pairwise_distances(e)
    positive = d > 0
    mean = d[positive].mean() if bool(positive.any()) else d.new_ones(())
    return d / mean


def rkd_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Huber loss between pairwise distances, each normalised by its mean over distinct pairs. (B, D) inputs."""
    return F.smooth_l1_loss(_normalised_distances(student), _normalised_distances(teacher))


def _angles(e: torch.Tensor) -> torch.Tensor:
    # diff[j, i] = e_i − e_j, unit length: angle[j, i, k] = cos of the angle at vertex j between i and k.
    diff = F.normalize(e[None, :, :] - e[:, None, :], p=2, dim=2)  # (B, B, D)
    return torch.bmm(diff, diff.transpose(1, 2)).flatten()  # (B·B·B,)


def rkd_angle(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Huber loss between the cosines of all angles formed by triplets of samples. (B, D) inputs."""
    return F.smooth_l1_loss(_angles(student), _angles(teacher))


@register("RelationBased")
class RelationBased(Strategy):
    """Park, Kim, Lu & Cho 2019, "Relational Knowledge Distillation" (RKD-DA).

    loss = weight · [distance_weight · Huber(ψ_D(s), ψ_D(t)) + angle_weight · Huber(ψ_A(s), ψ_A(t))]

    ψ_D: pairwise Euclidean distances divided by their mean over distinct pairs (the paper's μ; not
    the maximum). ψ_A: cosines of the angle at every vertex of every sample triplet. Features are
    flattened to (B, D); by default the last feature (the embedding) of each model is used, or the
    sum over `pairs`. Defaults follow the paper and the CRD benchmark: 25 and 50, weight 1.
    Needs a batch of at least 2 samples (3 for angles to say anything).
    """

    requires = frozenset({"features"})

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]] | None = None,
        distance_weight: float = 25.0,
        angle_weight: float = 50.0,
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        self.pairs = check_pairs(pairs)
        self.distance_weight = check_weight("distance_weight", distance_weight)
        self.angle_weight = check_weight("angle_weight", angle_weight)

    def forward(self, student: ModelOutput, teacher: ModelOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        pairs = feature_pairs(student, teacher, self.pairs, default="last")
        total = pairs[0].student.new_zeros(())
        for p in pairs:
            if p.student.shape[0] < 2:
                raise ValueError(f"RelationBased needs a batch of at least 2 samples, got {p.student.shape[0]}")
            s, t = p.student.flatten(1), p.teacher.flatten(1)
            if self.distance_weight:
                total = total + self.distance_weight * rkd_distance(s, t)
            if self.angle_weight:
                total = total + self.angle_weight * rkd_angle(s, t)
        return self.weight * total
