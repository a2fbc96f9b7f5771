"""Self teacher: Born-Again Networks (Furlanello et al. 2018) — generation g+1 learns from generation g.

`SelfTeacher` wraps a previous generation's model, frozen. The generations themselves train through
the one student loop (`raykd.stages.born_again.run_born_again`): each generation is saved with
`save_members(..., extra={"generation": g})` and read back here with `from_config`. The other Self
teacher, the mean teacher (`ema_decay`), is the student's own moving average: `raykd.train.teaching`.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from raykd.outputs import FeatureExtractor, ModelOutput
from raykd.teachers.base import Teacher
from raykd.teachers.neural_network import freeze
from raykd.teachers.registry import register

__all__ = ["SelfTeacher"]


@register("Self")
class SelfTeacher(Teacher):
    """The frozen generation-`generation` model acting as the teacher of generation + 1."""

    kind = "Self"
    one_network = True

    def __init__(self, model: nn.Module, generation: int = 0, num_classes: int | None = None, layers: Iterable[str] = ()) -> None:
        super().__init__()
        if generation < 0:
            raise ValueError(f"Self teacher generation must be >= 0, got {generation}")
        self.generation = int(generation)
        found = num_classes if num_classes is not None else getattr(model, "num_classes", None)
        if found is None:
            raise ValueError("Self teacher needs num_classes (the model does not declare it)")
        self.num_classes = int(found)
        self.net = FeatureExtractor(freeze(model), layers)

    @classmethod
    def from_config(cls, checkpoint: str | None = None, generation: int | None = None, member: str | None = None,
                    layers: Iterable[str] = (), ema_decay: float | None = None) -> "SelfTeacher":
        """A generation saved with `save_members`; its generation number from the manifest's extras.

        `ema_decay` names the other Self teacher, the mean teacher: an exponential moving average
        of the student's weights, which only the student's training loop can build."""
        from raykd.teachers.checkpoint import load_members

        if ema_decay is not None:
            raise ValueError("a Self teacher with ema_decay is the student's moving average; the student's training loop builds it")
        if checkpoint is None:
            raise ValueError("a Self teacher needs checkpoint= (a saved generation) or ema_decay= (the mean teacher)")

        members, extra = load_members(checkpoint)
        chosen = members[-1] if member is None else next((m for m in members if m.name == member), None)
        if chosen is None:
            raise ValueError(f"checkpoint {checkpoint} has no member {member!r}; members: {[m.name for m in members]}")
        gen = generation if generation is not None else int(extra.get("generation", 0))
        return cls(chosen.model, generation=gen, layers=layers)

    def forward(self, inputs: torch.Tensor) -> ModelOutput:
        return self.net(inputs)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "generation": self.generation}

