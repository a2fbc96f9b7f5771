"""SelfDistillation: deep supervision with auxiliary heads ("Be Your Own Teacher")."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy
from raykd.strategies.functional import (
    check_finite,
    check_ndim,
    check_temperature,
    check_unit_interval,
    check_weight,
    soft_kl,
)
from raykd.strategies.registry import register

__all__ = ["SelfDistillation", "AuxiliaryHead"]


class AuxiliaryHead(nn.Module):
    """Bottleneck from a shallow feature to the deepest feature's shape, then a classifier.

    (B, C_i, H_i, W_i) -> 1x1 conv + BN + ReLU -> pooled to (H_d, W_d) -> hint (B, C_d, H_d, W_d)
    -> global average pool -> Linear(C_d, num_classes). (B, D_i) features use Linear layers.
    """

    def __init__(self, shallow_shape: tuple[int, ...], deep_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.conv = len(shallow_shape) == 3
        if len(deep_shape) != len(shallow_shape):
            raise ValueError(f"feature shapes {shallow_shape} and {deep_shape} differ in rank")
        if self.conv:
            self.bottleneck: nn.Module = nn.Sequential(
                nn.Conv2d(shallow_shape[0], deep_shape[0], kernel_size=1, bias=False),
                nn.BatchNorm2d(deep_shape[0]),
                nn.ReLU(),
            )
            self.size = tuple(deep_shape[1:])
        else:
            self.bottleneck = nn.Sequential(nn.Linear(shallow_shape[-1], deep_shape[-1]), nn.ReLU())
        self.classifier = nn.Linear(deep_shape[0] if self.conv else deep_shape[-1], num_classes)

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hint = self.bottleneck(feature)
        if self.conv:
            hint = F.adaptive_avg_pool2d(hint, self.size)
            return hint, self.classifier(hint.mean(dim=(2, 3)))
        return hint, self.classifier(hint)


@register("SelfDistillation")
class SelfDistillation(Strategy):
    """Zhang et al. 2019, "Be Your Own Teacher: Improve the Performance of Convolutional Neural
    Networks via Self Distillation" (BYOT).

    loss = weight · [CE(q_C, y) + Σ_i ((1 − α)·CE(q_i, y) + α·T²·KL(q_C^T ‖ q_i^T) + λ·mean((h_i − F_C)²))]

    The student's own logits are the deepest classifier q_C; an auxiliary head on each shallow
    feature F_i (built from its shape) gives a hint h_i of the deepest feature's shape and logits
    q_i. The deepest logits and feature act as the teacher (detached). The teacher output is
    ignored and may be None. `features` names the shallow features (default: all but the last),
    `deepest` the deepest one (default: the last). Defaults T=3, α=0.3, λ=0.03 follow the common
    BYOT settings. Labels are required.
    """

    requires = frozenset({"logits", "features", "labels"})

    def __init__(
        self,
        features: Sequence[str] | None = None,
        deepest: str | None = None,
        temperature: float = 3.0,
        alpha: float = 0.3,
        feature_weight: float = 0.03,
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        self.temperature = check_temperature("temperature", temperature)
        self.alpha = check_unit_interval("alpha", alpha)
        self.feature_weight = check_weight("feature_weight", feature_weight)
        if features is not None:
            features = list(features)
            if not features or not all(isinstance(n, str) for n in features):
                raise ValueError(f"features must be a non-empty list of layer names, got {features!r}")
        self.feature_names = features
        self.deepest = deepest
        self.heads = nn.ModuleDict()

    def _names(self, student: ModelOutput) -> tuple[list[str], str]:
        if not student.features:
            raise ValueError(
                "SelfDistillation needs the student's features; wrap it in raykd.FeatureExtractor(model, layers=[...])"
            )
        names = list(student.features)
        deepest = self.deepest if self.deepest is not None else names[-1]
        shallow = self.feature_names if self.feature_names is not None else [n for n in names if n != deepest]
        if not shallow:
            raise ValueError(f"SelfDistillation needs at least one shallow feature besides {deepest!r}; got {names}")
        return shallow, deepest

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "_")

    def _build(self, student: ModelOutput, teacher: ModelOutput | None = None) -> None:
        shallow, deepest = self._names(student)
        deep = student.feature(deepest)
        num_classes = student.logits.shape[-1]
        for name in shallow:
            if self._key(name) in self.heads:
                continue
            f = student.feature(name)
            check_ndim(f"feature {name!r}", f, (2, 4))
            head = AuxiliaryHead(tuple(f.shape[1:]), tuple(deep.shape[1:]), num_classes)
            self.heads[self._key(name)] = head.to(device=f.device, dtype=f.dtype)

    def materialize(self, student: ModelOutput, teacher: ModelOutput | None = None) -> "SelfDistillation":  # type: ignore[override]
        with torch.no_grad():
            self._build(student)
        return self

    def auxiliary_logits(self, student: ModelOutput) -> dict[str, torch.Tensor]:
        """Each auxiliary head's logits, by feature name (for evaluating the shallow classifiers)."""
        self._build(student)
        shallow, _ = self._names(student)
        return {name: self.heads[self._key(name)](student.feature(name))[1] for name in shallow}

    def forward(
        self, student: ModelOutput, teacher: ModelOutput | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        if labels is None:
            raise ValueError("SelfDistillation needs labels: every classifier is trained with cross-entropy")
        logits = student.logits
        check_finite("student logits", logits)
        if labels.shape[0] != logits.shape[0]:
            raise ValueError(f"labels have batch size {labels.shape[0]} but the logits {logits.shape[0]}")
        self._build(student)
        shallow, deepest = self._names(student)
        deep_feature = student.feature(deepest).detach()
        deep_logits = logits.detach()
        T = self.temperature
        total = F.cross_entropy(logits, labels)
        for name in shallow:
            feature = student.feature(name)
            check_finite(f"student feature {name!r}", feature)
            hint, aux = self.heads[self._key(name)](feature)
            total = total + (1.0 - self.alpha) * F.cross_entropy(aux, labels)
            total = total + self.alpha * soft_kl(aux, deep_logits, T).mean() * T**2
            if self.feature_weight:
                total = total + self.feature_weight * F.mse_loss(hint, deep_feature)
        return self.weight * total
