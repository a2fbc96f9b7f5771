"""HiddenStateDistillation: layer-mapped hidden-state matching (Patient KD)."""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy
from raykd.strategies.functional import as_target, check_finite, check_positive_int, check_same_batch, check_weight
from raykd.strategies.registry import register

__all__ = ["HiddenStateDistillation", "ProgressiveDistillation", "layer_mapping"]

Mapping = Literal["uniform", "skip", "last"]


def layer_mapping(kind: Mapping, n_student: int, n_teacher: int) -> list[tuple[int, int]]:
    """(student_layer, teacher_layer) pairs, layers numbered from 1, for a student of M and a teacher of N layers.

    uniform (TinyBERT): m -> m·N/M for m = 1..M.
    skip (PKD-Skip): m -> m·⌊N/M⌋ for m = 1..M−1 (every k-th teacher layer; the last layer is left to KD).
    last (PKD-Last): m -> N − M + m for m = 1..M−1 (the teacher's last layers).
    """
    if n_student < 1 or n_teacher < 1:
        raise ValueError(f"need at least one layer on each side, got {n_student} and {n_teacher}")
    if n_student > n_teacher:
        raise ValueError(
            f"the student has more layers ({n_student}) than the teacher ({n_teacher}); pass explicit pairs"
        )
    if kind == "uniform":
        return [(m, m * n_teacher // n_student) for m in range(1, n_student + 1)]
    if kind in ("skip", "last"):
        if n_student < 2:
            raise ValueError(f"mapping {kind!r} pairs layers 1..M−1 and needs a student with at least 2 layers")
        if kind == "skip":
            step = n_teacher // n_student
            return [(m, m * step) for m in range(1, n_student)]
        return [(m, n_teacher - n_student + m) for m in range(1, n_student)]
    raise ValueError(f"mapping must be 'uniform', 'skip', 'last' or a list of (student, teacher) layers, got {kind!r}")


@register("HiddenStateDistillation")
class HiddenStateDistillation(Strategy):
    """Sun, Cheng, Gan & Liu 2019, "Patient Knowledge Distillation for BERT Model Compression" (PKD).

    loss = weight · Σ_(m, n) mean ‖ W h_s^m / ‖W h_s^m‖ − h_t^n / ‖h_t^n‖ ‖²₂

    Hidden states come from ModelOutput.hidden_states (Hugging Face layout: index 0 is the embedding
    output, index k the output of layer k) or, when absent, from the ordered features (feature i is
    layer i + 1). `mapping` picks the layer pairs, numbered from 1 (0 = embeddings): "uniform"
    (TinyBERT), "skip" and "last" (PKD-Skip / PKD-Last), or an explicit [(student, teacher), ...].
    `pool="cls"` compares the first token as PKD does; "mean" the masked token mean; "all" every
    real token (`attention_mask` (B, L)). `normalize=False` gives the plain MSE of TinyBERT.
    When widths differ, a learnable projection W (Linear, Xavier-uniform initialised, shared by the
    layers) maps the student to the teacher's width; give student_dim / teacher_dim to build it now.
    """

    requires = frozenset({"hidden_states"})

    def __init__(
        self,
        mapping: Mapping | Sequence[tuple[int, int]] = "uniform",
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        pool: Literal["cls", "mean", "all"] = "cls",
        normalize: bool = True,
        includes_embeddings: bool = True,
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        if isinstance(mapping, str):
            if mapping not in ("uniform", "skip", "last"):
                raise ValueError(f"mapping must be 'uniform', 'skip', 'last' or a list of pairs, got {mapping!r}")
            self.mapping: str | list[tuple[int, int]] = mapping
        else:
            pairs = [tuple(p) for p in mapping]
            if not pairs:
                raise ValueError("mapping is empty; give at least one (student_layer, teacher_layer)")
            for p in pairs:
                if len(p) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in p):
                    raise ValueError(f"each mapping pair must be two layer numbers >= 0, got {p!r}")
            self.mapping = pairs  # type: ignore[assignment]
        if pool not in ("cls", "mean", "all"):
            raise ValueError(f"pool must be 'cls', 'mean' or 'all', got {pool!r}")
        self.pool, self.normalize, self.includes_embeddings = pool, bool(normalize), bool(includes_embeddings)
        self.projection: nn.Linear | None = None
        if (student_dim is None) != (teacher_dim is None):
            raise ValueError("give both student_dim and teacher_dim, or neither (to infer them)")
        if student_dim is not None and teacher_dim is not None:
            self._make(check_positive_int("student_dim", student_dim), check_positive_int("teacher_dim", teacher_dim))
        self._built = student_dim is not None

    def _make(self, student_dim: int, teacher_dim: int) -> None:
        if student_dim != teacher_dim:
            self.projection = nn.Linear(student_dim, teacher_dim)
            nn.init.xavier_uniform_(self.projection.weight)
            nn.init.zeros_(self.projection.bias)

    def _layers(self, out: ModelOutput, who: str) -> dict[int, torch.Tensor]:
        if out.hidden_states:
            states = list(out.hidden_states)
            first = 0 if self.includes_embeddings else 1
        elif out.features:
            states, first = list(out.features.values()), 1
        else:
            raise ValueError(
                f"HiddenStateDistillation needs the {who}'s hidden states: run it with output_hidden_states=True "
                "or hook its layers with raykd.FeatureExtractor"
            )
        return {first + i: h for i, h in enumerate(states)}

    def _pairs(self, s_layers: dict[int, torch.Tensor], t_layers: dict[int, torch.Tensor]) -> list[tuple[int, int]]:
        if isinstance(self.mapping, str):
            n_s = sum(1 for k in s_layers if k >= 1)
            n_t = sum(1 for k in t_layers if k >= 1)
            return layer_mapping(self.mapping, n_s, n_t)  # type: ignore[arg-type]
        for s, t in self.mapping:
            if s not in s_layers or t not in t_layers:
                raise ValueError(
                    f"layer pair ({s}, {t}) out of range: student layers {sorted(s_layers)}, "
                    f"teacher layers {sorted(t_layers)}"
                )
        return self.mapping

    def _build(self, student: ModelOutput, teacher: ModelOutput) -> None:
        if self._built:
            return
        s_layers, t_layers = self._layers(student, "student"), self._layers(teacher, "teacher")
        s = next(iter(s_layers.values()))
        self._make(s.shape[-1], next(iter(t_layers.values())).shape[-1])
        if self.projection is not None:
            self.projection.to(device=s.device, dtype=s.dtype)
        self._built = True

    def _select(self, h: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if h.dim() == 2:  # (B, D): nothing to pool
            return h, None
        if self.pool == "cls":
            return h[:, 0], None
        if self.pool == "mean":
            if mask is None:
                return h.mean(dim=1), None
            m = mask.to(h.dtype).unsqueeze(-1)
            return (h * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0), None
        return h, mask

    def forward(
        self,
        student: ModelOutput,
        teacher: ModelOutput,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        s_layers, t_layers = self._layers(student, "student"), self._layers(teacher, "teacher")
        self._build(student, teacher)
        total = next(iter(s_layers.values())).new_zeros(())
        for si, ti in self._pairs(s_layers, t_layers):
            hs, ht = s_layers[si], as_target(t_layers[ti])
            check_same_batch(hs, ht, what=f"hidden states (layers {si} vs {ti})")
            check_finite(f"student hidden state {si}", hs)
            check_finite(f"teacher hidden state {ti}", ht)
            if self.projection is not None:
                hs = self.projection(hs)
            if hs.shape != ht.shape:
                raise ValueError(
                    f"student layer {si} {tuple(hs.shape)} and teacher layer {ti} {tuple(ht.shape)} differ in shape "
                    "after the projection"
                )
            if attention_mask is not None and hs.dim() == 3 and attention_mask.shape != hs.shape[:2]:
                raise ValueError(
                    f"attention_mask must have shape {tuple(hs.shape[:2])}, got {tuple(attention_mask.shape)}"
                )
            hs, mask = self._select(hs, attention_mask)
            ht, _ = self._select(ht, attention_mask)
            if self.normalize:
                per = (F.normalize(hs, dim=-1) - F.normalize(ht, dim=-1)).pow(2).sum(dim=-1)  # (B,) or (B, L)
            else:
                per = (hs - ht).pow(2).mean(dim=-1)
            if mask is not None:
                m = mask.to(per.dtype)
                total = total + (per * m).sum() / m.sum().clamp_min(1.0)
            else:
                total = total + per.mean()
        return self.weight * total


@register("ProgressiveDistillation")
class ProgressiveDistillation(HiddenStateDistillation):
    """Sun, Cheng, Gan & Liu 2019 (PKD) under the name and fields of seed 004's `ProgressiveDistillation`.

    loss = weight · hidden_weight · Σ_(m, n) mean ‖ W h_s^m − h_t^n ‖²₂ / d

    The seed's plain MSE between (projected) student and teacher hidden states at the
    `layer_mapping` pairs (numbered as in HiddenStateDistillation), with a Xavier-uniform projection
    W (student_dim → teacher_dim) when the widths differ. `hidden_weight` is the seed's loss weight;
    `weight` is the scale every strategy takes (Hybrid and the schedules set it).
    """

    def __init__(
        self,
        layer_mapping: Mapping | Sequence[tuple[int, int]] = "uniform",
        hidden_weight: float = 1.0,
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        pool: Literal["cls", "mean", "all"] = "mean",
        weight: float = 1.0,
    ) -> None:
        super().__init__(mapping=layer_mapping, student_dim=student_dim, teacher_dim=teacher_dim, pool=pool, normalize=False, weight=weight)
        self.hidden_weight = check_weight("hidden_weight", hidden_weight)

    def forward(
        self,
        student: ModelOutput,
        teacher: ModelOutput,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.hidden_weight * super().forward(student, teacher, labels, attention_mask)
