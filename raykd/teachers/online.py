"""Online teacher: peers trained while the student trains (co-training).

Deep Mutual Learning (Zhang et al. 2018, "Deep Mutual Learning"): K peer networks each minimise
`CE(z_i, y) + kl_weight * mean_{j != i} KL(p_j || p_i)`. The paper updates peers one after the
other, recomputing p_i between updates; `step` computes every peer's logits once and updates all
peers against their peers' detached predictions (the common simultaneous variant). Passing
`student_logits` to `step` makes the student one more peer the teachers learn from.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from raykd.outputs import ModelOutput
from raykd.strategies.functional import hinton_kd
from raykd.teachers.base import Requirements, Teacher
from raykd.teachers.common import module_bytes, to_tensor
from raykd.teachers.registry import register

__all__ = ["OnlineTeacher", "mutual_kl"]

OPTIMIZERS = ("sgd", "adam")


def mutual_kl(logits: torch.Tensor, peer_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(peer || self) averaged over the batch, scaled by T² as in Hinton et al. 2015. (B, C), (B, C)."""
    return hinton_kd(logits, peer_logits.detach(), temperature)


@register("Online")
class OnlineTeacher(Teacher):
    """K trainable peers; the teacher's output is the mean of their logits.

    `step(inputs, labels, student_logits=None)` runs one optimisation step of every peer and
    returns the losses. Unlike the other kinds, peers are not frozen; `predict` still runs them
    under inference mode.
    """

    kind = "Online"

    def __init__(
        self,
        peers: Sequence[nn.Module],
        lr: float = 0.05,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        temperature: float = 1.0,
        kl_weight: float = 1.0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        if not peers:
            raise ValueError("Online teacher needs at least one peer network")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"Online optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if temperature <= 0 or kl_weight < 0 or lr <= 0:
            raise ValueError(f"Online needs lr > 0, temperature > 0, kl_weight >= 0; got {lr}, {temperature}, {kl_weight}")
        self.peers = nn.ModuleList(peers)
        found = num_classes if num_classes is not None else getattr(peers[0], "num_classes", None)
        if found is None:
            raise ValueError("Online teacher needs num_classes (the peers do not declare it)")
        self.num_classes = int(found)
        self.temperature, self.kl_weight = temperature, kl_weight
        self.optimizer_name, self.lr = optimizer, lr
        params = [p for peer in self.peers for p in peer.parameters()]
        for p in params:
            p.requires_grad_(True)
        if optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        else:
            self.optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        self.steps = 0

    @classmethod
    def from_config(
        cls,
        spec: dict[str, Any] | None = None,
        num_peers: int = 2,
        checkpoint: str | None = None,
        lr: float = 0.05,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        temperature: float = 1.0,
        kl_weight: float = 1.0,
        seed: int = 0,
    ) -> "OnlineTeacher":
        """`num_peers` fresh networks from `spec` (seeded), or the members of a checkpoint to warm-start."""
        if checkpoint is not None:
            from raykd.teachers.checkpoint import load_members

            peers = [m.model for m in load_members(checkpoint)[0]]
        else:
            if spec is None:
                raise ValueError("Online teacher config needs spec= (a raykd.models spec) or checkpoint=")
            from raykd.models import build_model

            torch.manual_seed(seed)
            peers = [build_model(spec) for _ in range(num_peers)]
        return cls(peers, lr=lr, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay,
                   temperature=temperature, kl_weight=kl_weight)

    def peer_logits(self, inputs: Any) -> list[torch.Tensor]:
        x = to_tensor(inputs)
        return [peer(x) for peer in self.peers]

    def forward(self, inputs: Any) -> ModelOutput:
        logits = torch.stack([z.float() for z in self.peer_logits(inputs)])  # (K, B, C)
        return ModelOutput(logits=logits.mean(0))

    def loss(self, logits: list[torch.Tensor], labels: torch.Tensor, student_logits: torch.Tensor | None = None) -> tuple[torch.Tensor, list[float]]:
        """Sum over peers of CE + kl_weight * mean KL to the other peers (and the student)."""
        total = torch.zeros((), device=labels.device)
        per_peer = []
        for i, z in enumerate(logits):
            others = [o for j, o in enumerate(logits) if j != i]
            if student_logits is not None:
                others.append(student_logits)
            li = nn.functional.cross_entropy(z, labels)
            if others and self.kl_weight > 0:
                li = li + self.kl_weight * torch.stack([mutual_kl(z, o, self.temperature) for o in others]).mean()
            per_peer.append(float(li.detach()))
            total = total + li
        return total, per_peer

    def step(
        self, inputs: Any, labels: Any, student_logits: torch.Tensor | None = None, sync: Callable[[list[torch.Tensor]], None] | None = None
    ) -> dict[str, Any]:
        """One update of every peer; returns `{"loss": total, "peer_losses": [...], "step": n}`.

        `sync(grads)` runs between backward and the optimizer step: data-parallel workers average
        the peers' gradients there, so every worker's peers stay identical."""
        self.train()
        labels = to_tensor(labels).long()
        with torch.enable_grad():
            logits = self.peer_logits(inputs)
            total, per_peer = self.loss(logits, labels, None if student_logits is None else student_logits.detach())
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            if sync is not None:
                sync([p.grad for p in self.peers.parameters() if p.grad is not None])
            self.optimizer.step()
        self.steps += 1
        self.eval()
        return {"loss": float(total.detach()), "peer_losses": per_peer, "step": self.steps}

    def requirements(self) -> Requirements:
        # Weights, gradients and optimiser state (momentum / Adam moments) all stay resident.
        factor = 3 if self.optimizer_name == "sgd" else 4
        return Requirements(num_cpus=1.0, memory_bytes=factor * module_bytes(self.peers))

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "peers": len(self.peers),
            "optimizer": self.optimizer_name,
            "lr": self.lr,
            "temperature": self.temperature,
            "kl_weight": self.kl_weight,
            "steps": self.steps,
        }
