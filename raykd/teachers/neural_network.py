"""NeuralNetwork teacher: any frozen `nn.Module`."""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from raykd.outputs import FeatureExtractor, ModelOutput
from raykd.teachers.base import Teacher
from raykd.teachers.registry import register

__all__ = ["NeuralNetworkTeacher", "freeze"]


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@register("NeuralNetwork")
class NeuralNetworkTeacher(Teacher):
    """A single frozen network; `layers` names sub-modules whose outputs become features."""

    kind = "NeuralNetwork"
    one_network = True

    def __init__(self, model: nn.Module, num_classes: int | None = None, layers: Iterable[str] = (), name: str = "teacher") -> None:
        super().__init__()
        self.name = name
        self.net = FeatureExtractor(freeze(model), layers)
        found = num_classes if num_classes is not None else getattr(model, "num_classes", None)
        if found is None:
            raise ValueError("NeuralNetwork teacher needs num_classes (the model does not declare it)")
        self.num_classes = int(found)

    def forward(self, inputs: torch.Tensor) -> ModelOutput:
        return self.net(inputs)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "name": self.name, "params": sum(p.numel() for p in self.parameters())}

    @classmethod
    def from_config(cls, checkpoint: str, member: str | None = None, layers: Iterable[str] = ()) -> "NeuralNetworkTeacher":
        """The member `member` (or the only one) of a checkpoint written by `save_members`."""
        from raykd.teachers.checkpoint import load_members

        members, _ = load_members(checkpoint)
        names = [m.name for m in members]
        if member is None:
            if len(members) != 1:
                raise ValueError(
                    f"checkpoint {checkpoint} holds {len(members)} members {names}; pass member=NAME "
                    "or use kind Ensemble"
                )
            chosen = members[0]
        else:
            if member not in names:
                raise ValueError(f"checkpoint {checkpoint} has no member {member!r}; members: {names}")
            chosen = members[names.index(member)]
        return cls(chosen.model, layers=layers, name=chosen.name)
