"""AttentionBased distillation: attention transfer for CNNs, attention-map KL for transformers."""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy, check_pairs, feature_pairs
from raykd.strategies.functional import (
    as_target,
    check_finite,
    check_ndim,
    check_same_batch,
    check_weight,
    pool_to_smaller,
)
from raykd.strategies.registry import register

__all__ = ["AttentionBased", "attention_map", "attention_kl"]

# Default weights: β=1000 of the CRD benchmark for attention transfer; 1 for the transformer KL (MiniLM).
FEATURE_WEIGHT = 1000.0
TRANSFORMER_WEIGHT = 1.0


def attention_map(feature: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Zagoruyko & Komodakis' spatial attention: mean over channels of |f|^p, flattened, L2-normalised.

    (B, C, H, W) -> (B, H·W)
    """
    return F.normalize(feature.abs().pow(p).mean(dim=1).flatten(1), dim=1)


def attention_kl(
    student_attn: torch.Tensor,
    teacher_attn: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Mean over heads and valid query positions of KL(A_t[q] ‖ A_s[q]); attentions (B, H, L, L) are probabilities.

    `attention_mask` (B, L) marks real tokens with 1 and padding with 0; padded query rows are left out.
    """
    kl = (torch.special.xlogy(teacher_attn, teacher_attn) - teacher_attn * torch.log(student_attn.clamp_min(eps))).sum(
        -1
    )
    # kl: (B, H, L)
    if attention_mask is None:
        return kl.mean()
    mask = attention_mask.to(kl.dtype)[:, None, :].expand_as(kl)  # (B, H, L)
    return (kl * mask).sum() / mask.sum().clamp_min(1.0)


@register("AttentionBased")
class AttentionBased(Strategy):
    """Zagoruyko & Komodakis 2017, "Paying More Attention to Attention" (CNN features), and the
    attention-map KL of TinyBERT (Jiao et al. 2020) / MiniLM (Wang et al. 2020) for transformers.

    Feature mode, per layer pair: Q = normalize(flatten(mean_c |f|^p)); the larger map is pooled to
    the smaller spatial size; loss = mean((Q_s − Q_t)²). The paper writes β/2 · ‖Q_s − Q_t‖₂ summed
    over pairs with β=1000/(H·W·N); like the CRD benchmark (RepDistiller) we use the mean squared
    difference with β=1000 as the default `weight`. Features must be (B, C, H, W).

    Transformer mode, per attention-layer pair: mean over heads and real query tokens of
    KL(A_t ‖ A_s), where ModelOutput.attentions hold (B, H, L, L) probabilities (Hugging Face's
    `output_attentions=True`). Pass `attention_mask` (B, L) to leave padding out. Layers pair up
    in order when both models have as many; otherwise uniformly (TinyBERT: student layer m takes
    teacher layer m·N/M), or only the last layers with layer_map="last" (MiniLM). `pairs` given as
    integers name attention layers (0-based).

    mode="auto" uses attentions when both outputs carry them, feature maps otherwise. `weight=None`
    means 1000 for feature maps and 1 for attentions.
    """

    requires = frozenset({"features"})

    def __init__(
        self,
        p: float = 2.0,
        pairs: Sequence[tuple[str, str]] | Sequence[tuple[int, int]] | None = None,
        mode: Literal["auto", "feature", "transformer"] = "auto",
        layer_map: Literal["uniform", "last"] = "uniform",
        weight: float | None = None,
    ) -> None:
        super().__init__(1.0)
        self.weight = None if weight is None else check_weight("weight", weight)  # type: ignore[assignment]
        if not p > 0:
            raise ValueError(f"p must be > 0, got {p}")
        if mode not in ("auto", "feature", "transformer"):
            raise ValueError(f"mode must be 'auto', 'feature' or 'transformer', got {mode!r}")
        if layer_map not in ("uniform", "last"):
            raise ValueError(f"layer_map must be 'uniform' or 'last', got {layer_map!r}")
        self.p, self.mode, self.layer_map = float(p), mode, layer_map
        self.layer_pairs: list[tuple[int, int]] | None = None
        self.pairs: list[tuple[str, str]] | None = None
        if pairs is not None:
            pairs = [tuple(x) for x in pairs]  # type: ignore[misc]
            if pairs and all(len(x) == 2 and all(isinstance(i, int) for i in x) for x in pairs):
                if mode == "feature":
                    raise ValueError("integer pairs name attention layers; use layer names in mode='feature'")
                self.layer_pairs = pairs  # type: ignore[assignment]
                self.mode = "transformer"
            else:
                if mode == "transformer":
                    raise ValueError(
                        f"in mode='transformer' pairs are (student_layer, teacher_layer) integers, got {pairs!r}"
                    )
                self.pairs = check_pairs(pairs)  # type: ignore[arg-type]
        if self.mode == "transformer":
            self.requires = frozenset({"attentions"})

    def _use_attentions(self, student: ModelOutput, teacher: ModelOutput) -> bool:
        if self.mode == "transformer":
            for who, out in (("student", student), ("teacher", teacher)):
                if not out.attentions:
                    raise ValueError(
                        f"mode='transformer' needs attentions but the {who} output has none; "
                        "run the model with output_attentions=True"
                    )
            return True
        return self.mode == "auto" and bool(student.attentions) and bool(teacher.attentions)

    def _attention_layer_pairs(self, n_student: int, n_teacher: int) -> list[tuple[int, int]]:
        if self.layer_pairs is not None:
            for s, t in self.layer_pairs:
                if not (0 <= s < n_student and 0 <= t < n_teacher):
                    raise ValueError(
                        f"attention layer pair ({s}, {t}) out of range: the student has {n_student} "
                        f"layers and the teacher {n_teacher}"
                    )
            return self.layer_pairs
        if self.layer_map == "last":
            return [(n_student - 1, n_teacher - 1)]
        if n_student > n_teacher:
            raise ValueError(
                f"cannot map {n_student} student attention layers uniformly onto {n_teacher} teacher layers; "
                "pass pairs=[(student_layer, teacher_layer), ...] or layer_map='last'"
            )
        # TinyBERT's uniform map, 1-based: student layer m takes teacher layer ⌊m·N/M⌋ (N need not
        # be a multiple of M: 4 of 6 layers take 1, 3, 4, 6).
        return [(m, (m + 1) * n_teacher // n_student - 1) for m in range(n_student)]

    def forward(
        self,
        student: ModelOutput,
        teacher: ModelOutput,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self._use_attentions(student, teacher):
            weight = TRANSFORMER_WEIGHT if self.weight is None else self.weight
            s_attn, t_attn = student.attentions, teacher.attentions
            assert s_attn is not None and t_attn is not None
            total = s_attn[0].new_zeros(())
            for si, ti in self._attention_layer_pairs(len(s_attn), len(t_attn)):
                s, t = s_attn[si], as_target(t_attn[ti])
                check_same_batch(s, t, what=f"attentions (layers {si} vs {ti})")
                if s.shape != t.shape:
                    raise ValueError(
                        f"student attention layer {si} has shape {tuple(s.shape)} but teacher layer {ti} has "
                        f"{tuple(t.shape)}; the attention KL needs the same heads and sequence length"
                    )
                check_finite(f"student attention layer {si}", s)
                check_finite(f"teacher attention layer {ti}", t)
                if attention_mask is not None and attention_mask.shape != (s.shape[0], s.shape[-1]):
                    raise ValueError(
                        f"attention_mask must have shape (batch, seq_len) = {(s.shape[0], s.shape[-1])}, "
                        f"got {tuple(attention_mask.shape)}"
                    )
                total = total + attention_kl(s, t, attention_mask)
            return weight * total

        weight = FEATURE_WEIGHT if self.weight is None else self.weight
        pairs = feature_pairs(student, teacher, self.pairs)
        total = pairs[0].student.new_zeros(())
        for pair in pairs:
            check_ndim(f"student feature {pair.student_name!r}", pair.student, (4,))
            check_ndim(f"teacher feature {pair.teacher_name!r}", pair.teacher, (4,))
            s, t = pool_to_smaller(pair.student, pair.teacher)
            total = total + (attention_map(s, self.p) - attention_map(t, self.p)).pow(2).mean()
        return weight * total
