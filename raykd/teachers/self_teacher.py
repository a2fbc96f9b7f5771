"""Self teacher: Born-Again Networks (Furlanello et al. 2018) — generation g+1 learns from generation g.

`SelfTeacher` wraps the previous generation's model, frozen. `born_again_generations` runs the whole
sequence on tensors in pure torch: generation 0 learns from the labels, every later generation from
its predecessor, with the same architecture and budget. The paper's BAN loss is the teacher's
distribution only (`alpha=1.0`, the default here); `alpha < 1` mixes in the label cross-entropy.
The Ray Train recipe calls the same helpers per worker.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

from raykd.outputs import FeatureExtractor, ModelOutput
from raykd.strategies.functional import hinton_kd
from raykd.teachers.base import Teacher
from raykd.teachers.neural_network import freeze
from raykd.teachers.registry import register

__all__ = ["SelfTeacher", "GenerationResult", "born_again_generations", "train_generation", "accuracy"]


@register("Self")
class SelfTeacher(Teacher):
    """The frozen generation-`generation` model acting as the teacher of generation + 1."""

    kind = "Self"

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
    def from_config(cls, checkpoint: str, generation: int | None = None, member: str | None = None,
                    layers: Iterable[str] = ()) -> "SelfTeacher":
        """A generation saved with `save_members`; its generation number from the manifest's extras."""
        from raykd.teachers.checkpoint import load_members

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


@torch.no_grad()
def accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 4096) -> float:
    was = model.training
    model.eval()
    correct = 0
    for s in range(0, inputs.shape[0], batch_size):
        out = model(inputs[s : s + batch_size])
        logits = out.logits if isinstance(out, ModelOutput) else out
        correct += int((logits.argmax(-1) == labels[s : s + batch_size]).sum())
    model.train(was)
    return correct / max(1, inputs.shape[0])


def train_generation(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    teacher: Teacher | None = None,
    epochs: int = 10,
    lr: float = 0.05,
    batch_size: int = 64,
    temperature: float = 1.0,
    alpha: float = 1.0,
    seed: int = 0,
) -> nn.Module:
    """Trains `model` in place: CE on labels without a teacher, else alpha·KD + (1-alpha)·CE."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    n = inputs.shape[0]
    teacher_logits = None
    if teacher is not None:
        with torch.no_grad():
            teacher.eval()
            teacher_logits = torch.cat([teacher(inputs[s : s + 4096]).logits for s in range(0, n, 4096)]).float()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, batch_size):
            idx = perm[s : s + batch_size]
            logits = model(inputs[idx])
            ce = nn.functional.cross_entropy(logits, labels[idx])
            if teacher_logits is None:
                loss = ce
            else:
                loss = alpha * hinton_kd(logits, teacher_logits[idx], temperature) + (1 - alpha) * ce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model


@dataclass
class GenerationResult:
    generation: int
    accuracy: float
    model: nn.Module = field(repr=False)
    ensemble_accuracy: float | None = None  # BAN-ensemble of generations 0..g (mean of logits)


def born_again_generations(
    make_model: Callable[[], nn.Module] | dict[str, Any],
    train_inputs: torch.Tensor,
    train_labels: torch.Tensor,
    eval_inputs: torch.Tensor,
    eval_labels: torch.Tensor,
    generations: int = 3,
    epochs: int = 10,
    lr: float = 0.05,
    batch_size: int = 64,
    temperature: float = 1.0,
    alpha: float = 1.0,
    seed: int = 0,
    on_generation: Callable[[GenerationResult], None] | None = None,
) -> list[GenerationResult]:
    """Trains generation 0 on labels, then each generation g+1 from a `SelfTeacher` over g.

    `make_model` is a `raykd.models.build_model` spec or a zero-argument factory; generation g is
    initialised with seed `seed + g`. Returns one result per generation, with its accuracy on the
    eval tensors and that of the BAN ensemble of all generations so far.
    """
    if generations < 1:
        raise ValueError(f"born_again_generations needs generations >= 1, got {generations}")
    if isinstance(make_model, dict):
        from raykd.models import build_model

        spec = dict(make_model)
        factory: Callable[[], nn.Module] = lambda: build_model(spec)  # noqa: E731
    else:
        factory = make_model
    results: list[GenerationResult] = []
    teacher: SelfTeacher | None = None
    ensemble_logits = None
    for g in range(generations):
        torch.manual_seed(seed + g)
        model = factory()
        train_generation(model, train_inputs, train_labels, teacher, epochs, lr, batch_size, temperature, alpha, seed + g)
        with torch.no_grad():
            logits = model(eval_inputs).float()
        ensemble_logits = logits if ensemble_logits is None else ensemble_logits + logits
        result = GenerationResult(
            generation=g,
            accuracy=accuracy(model, eval_inputs, eval_labels),
            model=model,
            ensemble_accuracy=float((ensemble_logits.argmax(-1) == eval_labels).float().mean()),
        )
        results.append(result)
        if on_generation is not None:
            on_generation(result)
        teacher = SelfTeacher(copy.deepcopy(model), generation=g)
    return results
