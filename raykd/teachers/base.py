"""The `Teacher` protocol: called on a batch, returns a `ModelOutput`, says what it needs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from raykd.outputs import ModelOutput

__all__ = ["Requirements", "Teacher"]


@dataclass(frozen=True)
class Requirements:
    """What one replica needs, so an actor pool can be sized from it (Ray resource units).

    `num_cpus`, `num_gpus` and `memory_bytes` are the replica's own actor (the pool's member);
    `helpers` are the actors it starts itself (pipeline stages, tensor-parallel peers), which the
    pool must leave room for; `same_node` when they must share the member's node (their
    collectives need the node's interconnect).
    """

    num_cpus: float = 0.5
    num_gpus: float = 0.0
    memory_bytes: int = 0
    helpers: tuple["Requirements", ...] = ()
    same_node: bool = False

    @property
    def total_cpus(self) -> float:
        return self.num_cpus + sum(h.total_cpus for h in self.helpers)

    @property
    def total_gpus(self) -> float:
        return self.num_gpus + sum(h.total_gpus for h in self.helpers)

    @property
    def total_memory_bytes(self) -> int:
        return self.memory_bytes + sum(h.total_memory_bytes for h in self.helpers)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Teacher(nn.Module):
    """Base of every `TeacherModelType`: frozen by default, evaluated under inference mode.

    Subclasses implement `forward(inputs) -> ModelOutput` and set `kind` and `num_classes`.
    """

    kind: str = "NeuralNetwork"
    num_classes: int
    one_network: bool = False
    """True for kinds built from one network of a checkpoint (a run trains only one member for them)."""

    def requirements(self) -> Requirements:
        param_bytes = sum(p.numel() * p.element_size() for p in self.parameters())
        return Requirements(memory_bytes=int(param_bytes))

    def describe(self) -> dict[str, Any]:
        """A JSON-able description stored in soft-target metadata and reports."""
        return {"kind": self.kind, "num_classes": self.num_classes}

    @torch.inference_mode()
    def predict(self, inputs: Any, **kwargs: Any) -> ModelOutput:
        """Inference entry for actor pools: eval mode, no autograd bookkeeping.

        Extra keyword arguments (labels, sample indices) go to `forward` for kinds that use them.
        A NumPy array (what a Ray Data batch column holds) becomes a tensor first.
        """
        self.eval()
        if isinstance(inputs, np.ndarray):
            inputs = torch.from_numpy(inputs if inputs.flags.writeable else inputs.copy())
            if inputs.dtype == torch.float64:
                inputs = inputs.float()
        return self(inputs, **kwargs)

    @classmethod
    def from_config(cls, **params: Any) -> "Teacher":
        """Build from plain, picklable params (paths, specs, numbers), as a Ray actor receives them.

        Kinds that wrap trained weights read them from `checkpoint=` (a directory written by
        `raykd.teachers.save_members`); the default passes the params to the constructor.
        """
        return cls(**params)
