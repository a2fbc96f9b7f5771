"""MultiModal teacher: one tower per modality, CLIP-style contrastive logits between two of them.

Radford et al. 2021 (CLIP): embeddings are L2-normalised and
`logits_per_image = scale * image_emb @ text_emb.T` (B_img, B_txt); `logits_per_text` is its
transpose. With `class_inputs` (one text-tower input per class, e.g. tokenised prompts) a batch
that carries only the query modality gets zero-shot class logits `scale * image_emb @ class_emb.T`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from raykd.outputs import ModelOutput
from raykd.teachers.base import Teacher
from raykd.teachers.common import to_tensor
from raykd.teachers.neural_network import freeze
from raykd.teachers.registry import register

__all__ = ["MultiModalTeacher"]


@register("MultiModal")
class MultiModalTeacher(Teacher):
    """Frozen towers `{modality: nn.Module}` over a batch that is a dict of columns.

    - both `pair` modalities in the batch → `logits` = contrastive logits (B, B) of
      `pair[0]` against `pair[1]`; `features["logits_per_<pair[1]>"]` the transpose.
    - only `pair[0]` in the batch and `class_inputs` given → zero-shot logits (B, num_classes).
    Every tower that ran adds `features["<modality>_embeds"]` (normalised). `num_classes` is the
    number of class prompts, or 0 when the teacher is contrastive only (logits are batch × batch).
    `logit_scale` is CLIP's initial temperature 1/0.07 unless given.
    """

    kind = "MultiModal"

    def __init__(
        self,
        towers: Mapping[str, nn.Module],
        pair: Sequence[str] = ("image", "text"),
        logit_scale: float = 1 / 0.07,
        class_inputs: Any = None,
    ) -> None:
        super().__init__()
        if len(towers) < 2:
            raise ValueError(f"MultiModal needs at least two towers, got {list(towers)}")
        pair = tuple(pair)
        if len(pair) != 2 or any(p not in towers for p in pair):
            raise ValueError(f"MultiModal pair must name two towers out of {list(towers)}, got {list(pair)}")
        self.towers = nn.ModuleDict({k: freeze(v) for k, v in towers.items()})
        self.pair = pair
        self.register_buffer("log_scale", torch.tensor(math.log(logit_scale)), persistent=False)
        self.register_buffer("class_embeds", None, persistent=False)
        self.num_classes = 0
        if class_inputs is not None:
            with torch.no_grad():
                emb = self.embed(pair[1], class_inputs)  # (C, D)
            self.class_embeds = emb
            self.num_classes = int(emb.shape[0])

    @classmethod
    def from_config(
        cls,
        checkpoint: str,
        pair: Sequence[str] = ("image", "text"),
        logit_scale: float = 1 / 0.07,
        class_inputs: Any = None,
    ) -> "MultiModalTeacher":
        """Towers from a `save_members` directory whose member names are the modalities."""
        from raykd.teachers.checkpoint import load_members

        members, _ = load_members(checkpoint)
        return cls({m.name: m.model for m in members}, pair=pair, logit_scale=logit_scale, class_inputs=class_inputs)

    def embed(self, modality: str, inputs: Any) -> torch.Tensor:
        tower = self.towers[modality]
        x = to_tensor(inputs)
        out = tower(x)
        out = out.logits if isinstance(out, ModelOutput) else out
        return nn.functional.normalize(out.float(), dim=-1)  # (B, D)

    def forward(self, inputs: Mapping[str, Any]) -> ModelOutput:
        if not isinstance(inputs, Mapping):
            raise TypeError(
                f"a MultiModal batch is a dict of modality columns {list(self.towers)}, got {type(inputs).__name__}"
            )
        present = [m for m in self.towers if m in inputs]
        if self.pair[0] not in present:
            raise ValueError(f"MultiModal batch lacks the {self.pair[0]!r} column; it has {list(inputs)}")
        embeds = OrderedDict((m, self.embed(m, inputs[m])) for m in present)
        scale = self.log_scale.exp()
        features: "OrderedDict[str, torch.Tensor]" = OrderedDict((f"{m}_embeds", e) for m, e in embeds.items())
        query = embeds[self.pair[0]]
        if self.pair[1] in embeds:
            logits = scale * query @ embeds[self.pair[1]].T  # (B_q, B_k)
            features[f"logits_per_{self.pair[1]}"] = logits.T
        elif self.class_embeds is not None:
            logits = scale * query @ self.class_embeds.T  # (B, C)
        else:
            raise ValueError(
                f"MultiModal batch has only {present}: contrastive logits need the {self.pair[1]!r} column "
                "too, or build the teacher with class_inputs= for zero-shot class logits"
            )
        return ModelOutput(logits=logits, features=features)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "towers": list(self.towers),
            "pair": list(self.pair),
            "logit_scale": float(self.log_scale.exp()),
        }
