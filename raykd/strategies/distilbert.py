"""DistilBERT's triple loss: soft-target KL, masked-language-model CE and hidden-state cosine."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from raykd.outputs import ModelOutput
from raykd.strategies.base import Strategy
from raykd.strategies.functional import (
    as_target,
    check_finite,
    check_same_batch,
    check_temperature,
    check_weight,
    logit_pair,
    soft_kl,
)
from raykd.strategies.registry import register

__all__ = ["DistilBERT"]


def _last_hidden(out: ModelOutput, who: str) -> torch.Tensor:
    if out.hidden_states:
        return out.hidden_states[-1]
    if out.features:
        return out.last_feature()
    raise ValueError(
        f"the cosine term needs the {who}'s last hidden state: run it with output_hidden_states=True "
        "(or set alpha_cos=0)"
    )


@register("DistilBERT")
class DistilBERT(Strategy):
    """Sanh, Debut, Chaumond & Wolf 2019, "DistilBERT, a distilled version of BERT".

    loss = weight · [alpha_ce · T² · KL(p_t^T ‖ p_s^T) + alpha_mlm · CE_mlm(s, y) + alpha_cos · (1 − cos(h_s, h_t))]

    Logits (B, L, V) (or (B, V)); `labels` are MLM labels (B, L) with -100 where no token is
    predicted. As in the authors' training script, the soft-target KL is averaged over the
    positions that carry an MLM label when labels are given (else over real tokens by
    `attention_mask`, else all), and the cosine term over real tokens of the last hidden states
    (ModelOutput.hidden_states[-1], or the last feature), which must have the same width.
    Defaults: the script's alpha_ce=5, alpha_mlm=2, alpha_cos=1, T=2.
    """

    requires = frozenset({"logits", "labels", "hidden_states"})

    def __init__(
        self,
        temperature: float = 2.0,
        alpha_ce: float = 5.0,
        alpha_mlm: float = 2.0,
        alpha_cos: float = 1.0,
        ignore_index: int = -100,
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        self.temperature = check_temperature("temperature", temperature)
        self.alpha_ce = check_weight("alpha_ce", alpha_ce)
        self.alpha_mlm = check_weight("alpha_mlm", alpha_mlm)
        self.alpha_cos = check_weight("alpha_cos", alpha_cos)
        self.ignore_index = int(ignore_index)
        needs = {"logits"}
        if self.alpha_mlm:
            needs.add("labels")
        if self.alpha_cos:
            needs.add("hidden_states")
        self.requires = frozenset(needs)

    def forward(
        self,
        student: ModelOutput,
        teacher: ModelOutput,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        s, t = logit_pair(student, teacher)
        token_shape = s.shape[:-1]
        if labels is not None and labels.shape != token_shape:
            raise ValueError(f"labels must have shape {tuple(token_shape)}, got {tuple(labels.shape)}")
        # The mask marks real tokens (B, L). Per-token logits (B, L, V) must match it; per-sequence
        # logits (B, V) (a bare encoder's pooled output) have no positions, and the mask then only
        # reaches the cosine term over token states.
        token_logits = s.dim() == 3
        if attention_mask is not None and token_logits and attention_mask.shape != token_shape:
            raise ValueError(f"attention_mask must have shape {tuple(token_shape)}, got {tuple(attention_mask.shape)}")
        T = self.temperature
        loss = s.new_zeros(())

        if self.alpha_ce:
            if labels is not None:
                keep = labels != self.ignore_index
            elif attention_mask is not None and token_logits:
                keep = attention_mask.bool()
            else:
                keep = torch.ones(token_shape, dtype=torch.bool, device=s.device)
            if bool(keep.any()):
                kl = soft_kl(s[keep], t[keep], T)  # (N,) over the kept positions
                loss = loss + self.alpha_ce * kl.mean() * T**2

        if self.alpha_mlm:
            if labels is None:
                raise ValueError("DistilBERT's MLM term needs labels (set alpha_mlm=0 to leave it out)")
            if bool((labels != self.ignore_index).any()):
                loss = loss + self.alpha_mlm * F.cross_entropy(
                    s.reshape(-1, s.shape[-1]), labels.reshape(-1), ignore_index=self.ignore_index
                )

        if self.alpha_cos:
            h_s, h_t = _last_hidden(student, "student"), as_target(_last_hidden(teacher, "teacher"))
            check_same_batch(h_s, h_t, what="hidden states")
            if h_s.shape != h_t.shape:
                raise ValueError(
                    f"the cosine term needs hidden states of equal shape, got {tuple(h_s.shape)} and "
                    f"{tuple(h_t.shape)}; use HiddenStateDistillation (with a projection) for different widths"
                )
            check_finite("student hidden state", h_s)
            check_finite("teacher hidden state", h_t)
            cos = F.cosine_similarity(h_s, h_t, dim=-1)  # (B, L) or (B,)
            if cos.dim() == 2 and attention_mask is not None:
                if attention_mask.shape != cos.shape:
                    raise ValueError(f"attention_mask must have shape {tuple(cos.shape)} (the hidden states' tokens), got {tuple(attention_mask.shape)}")
                # Padding positions carry no meaning: average over real tokens only.
                mask = attention_mask.to(cos.dtype)
                loss = loss + self.alpha_cos * ((1.0 - cos) * mask).sum() / mask.sum().clamp_min(1.0)
            else:
                loss = loss + self.alpha_cos * (1.0 - cos).mean()
        return self.weight * loss
