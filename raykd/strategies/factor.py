"""FactorTransfer distillation (paraphraser and translator)."""

from __future__ import annotations

import warnings
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy, check_pairs, feature_pairs
from raykd.strategies.functional import as_target, check_finite, check_ndim, check_positive_int, pool_to_smaller
from raykd.strategies.registry import register

__all__ = ["FactorTransfer", "Paraphraser", "Translator"]


def _block(i: int, o: int, conv: bool, transpose: bool = False, bn: bool = False) -> list[nn.Module]:
    if conv:
        layer: nn.Module = (nn.ConvTranspose2d if transpose else nn.Conv2d)(i, o, kernel_size=3, stride=1, padding=1)
        norm: nn.Module = nn.BatchNorm2d(o) if bn else nn.Identity()
    else:
        layer, norm = nn.Linear(i, o), (nn.BatchNorm1d(o) if bn else nn.Identity())
    return [layer, norm, nn.LeakyReLU(0.1)]


class Paraphraser(nn.Module):
    """Convolutional auto-encoder on the teacher feature; its code (the encoder output) is the factor.

    Channels C -> C -> k·C -> k·C (encoder) and back (decoder), 3x3 convs, LeakyReLU(0.1), as in the
    paper; Linear layers for (B, D) features.
    """

    def __init__(self, channels: int, factor_channels: int, conv: bool = True) -> None:
        super().__init__()
        c, k = channels, factor_channels
        self.encoder = nn.Sequential(*_block(c, c, conv), *_block(c, k, conv), *_block(k, k, conv))
        self.decoder = nn.Sequential(
            *_block(k, k, conv, transpose=True),
            *_block(k, c, conv, transpose=True),
            *_block(c, c, conv, transpose=True),
        )

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        factor = self.encoder(feature)
        return factor, self.decoder(factor)


class Translator(nn.Module):
    """Maps the student feature to a factor of the paraphraser's width (3 layers with BatchNorm)."""

    def __init__(self, channels: int, factor_channels: int, conv: bool = True) -> None:
        super().__init__()
        c, k = channels, factor_channels
        self.encoder = nn.Sequential(
            *_block(c, c, conv, bn=True), *_block(c, k, conv, bn=True), *_block(k, k, conv, bn=True)
        )

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.encoder(feature)


def _factor(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.flatten(1), p=2, dim=1)


@register("FactorTransfer")
class FactorTransfer(Strategy):
    """Kim, Park & Kwak 2018, "Paraphrasing Complex Network: Network Compression via Factor Transfer".

    loss = weight · mean |F_s/‖F_s‖₂ − F_t/‖F_t‖₂|   (p = 1)

    F_t = paraphraser encoder(teacher feature), F_s = translator(student feature), both flattened
    and L2-normalised. The paper's ‖·‖₁ sums over the factor; like the CRD benchmark we average
    (β=200 the default weight). The paraphraser must be trained first, by reconstruction of the
    teacher feature (`pretrain_paraphraser(teacher_features, epochs)`, or a trainer's own loop over
    `reconstruction_loss(teacher_feature)`), and stays frozen during distillation: no gradient
    reaches it from `forward`. The translator trains with the student. One layer pair, by default
    the last feature of each; (B, C, H, W) features use conv layers, (B, D) features linear ones.
    `rate` (k=0.5) sets the factor's width relative to the teacher's channels.
    """

    requires = frozenset({"features"})

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]] | None = None,
        student_channels: int | None = None,
        teacher_channels: int | None = None,
        conv: bool = True,
        rate: float = 0.5,
        pretrain_epochs: int = 10,
        weight: float = 200.0,
    ) -> None:
        super().__init__(weight)
        self.pretrain_epochs = check_positive_int("pretrain_epochs", pretrain_epochs)
        if not 0 < rate <= 1:
            raise ValueError(f"rate must be in (0, 1], got {rate}")
        self.pairs = check_pairs(pairs)
        if self.pairs is not None and len(self.pairs) != 1:
            raise ValueError(f"FactorTransfer uses one layer pair, got {len(self.pairs)}")
        self.rate = float(rate)
        self.paraphraser: Paraphraser | None = None
        self.translator: Translator | None = None
        self.register_buffer("paraphraser_trained", torch.tensor(False))
        if (student_channels is None) != (teacher_channels is None):
            raise ValueError("give both student_channels and teacher_channels, or neither (to infer them)")
        if student_channels is not None and teacher_channels is not None:
            self._make(
                check_positive_int("student_channels", student_channels),
                check_positive_int("teacher_channels", teacher_channels),
                conv,
            )

    def _make(self, student_channels: int, teacher_channels: int, conv: bool) -> None:
        factor_channels = max(1, int(teacher_channels * self.rate))
        self.paraphraser = Paraphraser(teacher_channels, factor_channels, conv)
        self.translator = Translator(student_channels, factor_channels, conv)

    def _build(self, student: ModelOutput, teacher: ModelOutput) -> None:
        if self.paraphraser is not None:
            return
        (p,) = feature_pairs(student, teacher, self.pairs, default="last")
        check_ndim("teacher feature", p.teacher, (2, 4))
        check_ndim("student feature", p.student, (p.teacher.dim(),))
        self._make(p.student.shape[1], p.teacher.shape[1], conv=p.teacher.dim() == 4)
        self.to(device=p.student.device, dtype=p.student.dtype)

    def reconstruction_loss(self, teacher_feature: torch.Tensor, student_channels: int | None = None) -> torch.Tensor:
        """MSE between a teacher feature and the paraphraser's reconstruction of it (paraphraser pre-training)."""
        teacher_feature = as_target(teacher_feature)
        check_finite("teacher feature", teacher_feature)
        if self.paraphraser is None:
            if student_channels is None:
                raise ValueError(
                    "the paraphraser is not built yet: pass student_channels= (or build the strategy with "
                    "student_channels/teacher_channels, or call materialize first)"
                )
            check_ndim("teacher feature", teacher_feature, (2, 4))
            self._make(
                check_positive_int("student_channels", student_channels),
                teacher_feature.shape[1],
                conv=teacher_feature.dim() == 4,
            )
            self.to(device=teacher_feature.device, dtype=teacher_feature.dtype)
        assert self.paraphraser is not None
        _, reconstruction = self.paraphraser(teacher_feature)
        return F.mse_loss(reconstruction, teacher_feature)

    def pretrain_paraphraser(
        self,
        teacher_features: Iterable[torch.Tensor],
        epochs: int = 1,
        lr: float = 1e-3,
        student_channels: int | None = None,
    ) -> list[float]:
        """Train the paraphraser to reconstruct teacher features (Adam); returns the mean loss of each epoch.

        `teacher_features` must be re-iterable (a list or a DataLoader) when epochs > 1.
        """
        epochs = check_positive_int("epochs", epochs)
        if epochs > 1 and iter(teacher_features) is teacher_features:  # type: ignore[comparison-overlap]
            raise ValueError("teacher_features is a one-shot iterator; pass a list or a DataLoader for epochs > 1")
        optimizer = None
        history = []
        was_training = self.training
        self.train()
        for _ in range(epochs):
            total, count = 0.0, 0
            for feature in teacher_features:
                loss = self.reconstruction_loss(feature, student_channels)
                if optimizer is None:
                    assert self.paraphraser is not None
                    optimizer = torch.optim.Adam(self.paraphraser.parameters(), lr=lr)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total, count = total + float(loss.detach()), count + 1
            if count == 0:
                raise ValueError("teacher_features yielded no tensors")
            history.append(total / count)
        self.train(was_training)
        assert self.paraphraser is not None
        self.paraphraser.zero_grad(set_to_none=True)  # nothing of the pre-training leaks into the next step
        self.paraphraser_trained.fill_(True)
        return history

    def prepare(self, teacher_outputs: Callable[[], Iterable[ModelOutput]]) -> None:
        """Pre-trains the paraphraser for `pretrain_epochs` on the teacher's paired feature."""
        if bool(self.paraphraser_trained):
            return
        name = self.pairs[0][1] if self.pairs is not None else None
        features = [o.feature(name) if name is not None else o.last_feature() for o in teacher_outputs()]
        self.pretrain_paraphraser(features, epochs=self.pretrain_epochs)

    def forward(self, student: ModelOutput, teacher: ModelOutput, labels: torch.Tensor | None = None) -> torch.Tensor:
        (p,) = feature_pairs(student, teacher, self.pairs, default="last")
        self._build(student, teacher)
        assert self.paraphraser is not None and self.translator is not None
        if not bool(self.paraphraser_trained):
            warnings.warn(
                "FactorTransfer's paraphraser has not been pre-trained; call pretrain_paraphraser(...) first "
                "(the paper trains it by reconstruction before distillation)",
                stacklevel=2,
            )
        with torch.no_grad():
            factor_t = self.paraphraser.encoder(p.teacher)
        factor_s = self.translator(p.student)
        if factor_s.dim() == 4:
            factor_s, factor_t = pool_to_smaller(factor_s, factor_t)
        if factor_s.shape != factor_t.shape:
            raise ValueError(
                f"student factor {tuple(factor_s.shape)} and teacher factor {tuple(factor_t.shape)} differ"
            )
        return self.weight * (_factor(factor_s) - _factor(factor_t)).abs().mean()
