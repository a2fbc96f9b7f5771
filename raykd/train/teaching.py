"""How the run's teacher acts inside the student's training loop, in every Ray Train worker.

A fixed teacher gives the same targets every epoch: its logits come from the stored soft targets,
or its network runs on each batch in the worker. Four kinds act during training instead:
- Adaptive: each sample's distillation term is weighted by the student's errors of the previous
  epoch (by class, or by sample id), counted on every worker and summed before the new weights.
- Curriculum: each epoch trains on the easiest share of every worker's shard that the pacing
  allows, ranked by the teacher's loss (or confidence) on each row (Hacohen & Weinshall 2019).
- Online: Deep Mutual Learning (Zhang et al. 2018): the peers train beside the student on the same
  batches, each learning from the labels and from the student; the student learns from them.
- Self with `ema_decay`: the mean teacher (Tarvainen & Valpola 2017): an exponential moving
  average of the student's own weights teaches the student.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from raykd.outputs import FeatureExtractor, ModelOutput, as_model_output
from raykd.teachers.adaptive import AdaptiveWeights
from raykd.teachers.curriculum import difficulty, pacing_fraction

__all__ = ["Teaching", "in_loop_kind", "build_teaching", "teacher_network_in_loop", "trained_teacher", "IN_LOOP_PARAMS"]

# The parameters of each in-loop kind that the loop reads (the rest build the teacher network).
IN_LOOP_PARAMS: dict[str, tuple[str, ...]] = {
    "Adaptive": ("mode", "num_samples", "momentum", "power", "eps"),
    "Curriculum": ("pacing", "start_fraction", "full_at_epoch", "num_steps", "score"),
    "Online": (),
    "EMA": ("ema_decay",),
}


def in_loop_kind(kind: str, params: Mapping[str, Any]) -> str | None:
    """The kinds that act during training: Adaptive, Curriculum, Online, and `EMA` for a Self
    teacher given `ema_decay` (a Self teacher from a checkpoint is a fixed Born-Again generation)."""
    if kind in ("Adaptive", "Curriculum", "Online"):
        return kind
    if kind == "Self" and params.get("ema_decay") is not None:
        return "EMA"
    return None


def teacher_network_in_loop(kind: str, params: Mapping[str, Any]) -> bool:
    """True for teachers that change while the student trains: no stored soft target can stand for them."""
    return in_loop_kind(kind, params) in ("Online", "EMA")


def _all_reduce_sum(tensors: list[torch.Tensor]) -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)


def _average_grads(grads: list[torch.Tensor]) -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for g in grads:
            dist.all_reduce(g, op=dist.ReduceOp.SUM)
            g /= dist.get_world_size()


class Teaching:
    """A fixed teacher. `network` (when not None) runs on every batch in the worker; otherwise the
    loop decodes the batch's stored soft targets."""

    kind = "fixed"

    def __init__(self, network: nn.Module | None = None) -> None:
        self.network = network

    def teacher_output(self, batch: dict[str, torch.Tensor]) -> ModelOutput | None:
        return None if self.network is None else self.network.predict(batch["x"])

    def sample_weight(self, batch: dict[str, torch.Tensor], teacher_out: ModelOutput) -> torch.Tensor | None:
        """(B,) weights of the batch's distillation terms; None weighs them equally."""
        return None

    def rows(self, epoch: int, tensors: Callable[[], dict[str, torch.Tensor]]) -> torch.Tensor | None:
        """Positions of the worker's shard rows this epoch trains on; None: all of them."""
        return None

    def after_step(self, batch: dict[str, torch.Tensor], student_logits: torch.Tensor) -> dict[str, float]:
        """Called after each student step; returns per-step values the epoch averages."""
        return {}

    def end_epoch(self, evaluate: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
        """Called once per epoch on every worker; returns the epoch's metrics of the teaching."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores what `state_dict` saved (for a resumed run)."""


class AdaptiveTeaching(Teaching):
    kind = "Adaptive"

    def __init__(self, network: nn.Module | None, weights: AdaptiveWeights) -> None:
        super().__init__(network)
        self.weights = weights

    def sample_weight(self, batch: dict[str, torch.Tensor], teacher_out: ModelOutput) -> torch.Tensor:
        return self.weights.weights_for(batch.get("label"), batch["id"], teacher_out.logits).to(batch["x"].device)

    def after_step(self, batch: dict[str, torch.Tensor], student_logits: torch.Tensor) -> dict[str, float]:
        self.weights.observe(student_logits, batch["label"], batch["id"])
        return {}

    def end_epoch(self, evaluate: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
        _all_reduce_sum(self.weights.accumulators())  # every worker ends with the same weights
        summary = self.weights.end_epoch()
        return {f"adaptive_{k}": v for k, v in summary.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"adaptive": {k: v.cpu() for k, v in self.weights.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights.load_state_dict(state["adaptive"])


class CurriculumTeaching(Teaching):
    kind = "Curriculum"

    def __init__(
        self, network: nn.Module | None, teacher_logits: Callable[[dict[str, torch.Tensor]], torch.Tensor],
        pacing: str = "linear", start_fraction: float = 0.25, full_at_epoch: int = 5, num_steps: int = 4, score: str = "loss",
    ) -> None:  # fmt: skip
        super().__init__(network)
        self.teacher_logits = teacher_logits
        self.pacing, self.start_fraction, self.full_at_epoch, self.num_steps, self.score = pacing, start_fraction, full_at_epoch, num_steps, score
        self.order: torch.Tensor | None = None
        self.fraction = 1.0

    @torch.no_grad()
    def rows(self, epoch: int, tensors: Callable[[], dict[str, torch.Tensor]]) -> torch.Tensor:
        if self.order is None:
            # The teacher ranks this worker's shard once; shards are equal in size, so every worker
            # takes the same number of rows and runs the same number of steps.
            shard = tensors()
            logits = torch.cat([self.teacher_logits({k: v[i : i + 4096] for k, v in shard.items()}) for i in range(0, len(shard["id"]), 4096)])
            self.order = torch.sort(difficulty(logits, shard.get("label"), self.score).cpu(), stable=True).indices
        self.fraction = pacing_fraction(epoch, self.pacing, self.start_fraction, self.full_at_epoch, self.num_steps)
        return self.order[: max(1, math.ceil(self.fraction * len(self.order)))]

    def end_epoch(self, evaluate: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
        return {"curriculum_fraction": self.fraction}


class OnlineTeaching(Teaching):
    kind = "Online"

    def after_step(self, batch: dict[str, torch.Tensor], student_logits: torch.Tensor) -> dict[str, float]:
        # The student is one more peer the teachers learn from (Deep Mutual Learning).
        return {"peer_loss": self.network.step(batch["x"], batch["label"], student_logits, sync=_average_grads)["loss"]}

    def end_epoch(self, evaluate: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
        return {"teacher_val_accuracy": evaluate(self.network)["accuracy"]}

    def state_dict(self) -> dict[str, Any]:
        return {"peers": {k: v.cpu() for k, v in self.network.state_dict().items()}, "peer_optimizer": self.network.optimizer.state_dict(), "steps": self.network.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.network.load_state_dict(state["peers"])
        self.network.optimizer.load_state_dict(state["peer_optimizer"])
        self.network.steps = int(state["steps"])


class EmaTeaching(Teaching):
    kind = "EMA"

    def __init__(self, student: nn.Module, ema_decay: float, layers: tuple[str, ...] = ()) -> None:
        if not 0.0 < ema_decay < 1.0:
            raise ValueError(f"teacher.params.ema_decay must be in (0, 1), got {ema_decay}")
        self.averaged = AveragedModel(student, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
        # Its own feature hooks: a copied FeatureExtractor's hooks would still record into the student's.
        super().__init__(FeatureExtractor(self.averaged.module, layers) if layers else self.averaged.module)
        self.student = student

    @torch.no_grad()
    def teacher_output(self, batch: dict[str, torch.Tensor]) -> ModelOutput:
        self.network.eval()
        return as_model_output(self.network(batch["x"]))

    def after_step(self, batch: dict[str, torch.Tensor], student_logits: torch.Tensor) -> dict[str, float]:
        self.averaged.update_parameters(self.student)
        return {}

    def end_epoch(self, evaluate: Callable[[nn.Module], dict[str, float]]) -> dict[str, float]:
        return {"teacher_val_accuracy": evaluate(self.averaged.module)["accuracy"]}

    def state_dict(self) -> dict[str, Any]:
        return {"ema": {k: v.cpu() for k, v in self.averaged.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state["ema"])



def build_teaching(
    kind: str | None, params: Mapping[str, Any], network: nn.Module | None, student: nn.Module,
    teacher_logits: Callable[[dict[str, torch.Tensor]], torch.Tensor], num_classes: int, layers: tuple[str, ...] = (),
) -> Teaching:  # fmt: skip
    """The teaching of an in-loop `kind` (see `in_loop_kind`), or a fixed teacher for None.
    `student` is the student model itself (the mean teacher averages it; `layers` are the features
    the strategy reads); `teacher_logits(batch)` gives a batch's teacher logits however the run
    has them (stored, or from `network`)."""
    chosen = {k: params[k] for k in IN_LOOP_PARAMS.get(kind or "", ()) if k in params}
    if kind is None:
        return Teaching(network)
    if kind == "Adaptive":
        return AdaptiveTeaching(network, AdaptiveWeights(num_classes, **chosen).to(next(student.parameters()).device))
    if kind == "Curriculum":
        return CurriculumTeaching(network, teacher_logits, **chosen)
    if kind == "Online":
        return OnlineTeaching(network)
    if kind == "EMA":
        return EmaTeaching(student, float(chosen["ema_decay"]), layers)
    raise ValueError(f"unknown in-loop teacher kind {kind!r}")


def trained_teacher(kind: str | None, teacher_config: dict[str, Any] | None, model_spec: dict[str, Any], checkpoint: str) -> nn.Module | None:
    """The teacher as a student checkpoint left it, for the kinds whose teacher trains with the
    student (Online's peers, the mean teacher); None for the others."""
    from raykd.models import build_model
    from raykd.teachers import build_from_config
    from raykd.train.checkpoint import load_training_state

    if kind not in ("Online", "EMA"):
        return None
    state = load_training_state(checkpoint)["teaching"]
    if kind == "Online":
        network = build_from_config(teacher_config)
        network.load_state_dict(state["peers"])
        return network.eval()
    model = build_model(model_spec)  # AveragedModel keeps the copy as `module.` and a step count
    model.load_state_dict({k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")})
    return model.eval()
