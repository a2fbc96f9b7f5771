"""Ensemble teacher: several teachers combined into one set of logits."""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from typing import Any, Iterable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from raykd.outputs import ModelOutput
from raykd.teachers.base import Requirements, Teacher
from raykd.teachers.registry import register

__all__ = ["EnsembleTeacher", "COMBINE_MODES"]

COMBINE_MODES = ("mean_logits", "mean_probs", "vote", "weighted")


@register("Ensemble")
class EnsembleTeacher(Teacher):
    """Combines member teachers that agree on the class count.

    - `mean_logits` (default): the arithmetic mean of logits.
    - `mean_probs`: log of the mean of probabilities, so softmax of the output is the mean.
    - `vote`: log of the vote share of each class (majority vote; unvoted classes get -inf).
    - `weighted`: weighted mean of logits with explicit `weights` (normalised to sum 1).
    Features of member i come back as `member{i}.{name}`.

    With `vectorize=True` (default), NeuralNetwork members that share one architecture (same module
    structure, parameter shapes and feature layers) run as ONE batched call: their weights are
    stacked with `torch.func.stack_module_state` and the shared forward is mapped over the member
    axis with `torch.vmap(functional_call)`. Members of a unique architecture, or of another kind,
    run in a loop. Outputs equal the loop's (the test checks 1e-5); `vectorize=False` keeps the loop.
    """

    kind = "Ensemble"

    def __init__(
        self,
        members: Sequence[Teacher],
        combine: str = "mean_logits",
        weights: Sequence[float] | None = None,
        vectorize: bool = True,
    ) -> None:
        super().__init__()
        if not members:
            raise ValueError("Ensemble needs at least one member teacher")
        counts = {i: int(m.num_classes) for i, m in enumerate(members)}
        if len(set(counts.values())) != 1:
            raise ValueError(
                f"ensemble members disagree on the class count: {counts} (member index: classes); "
                "every member must predict the same label set"
            )
        if combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {COMBINE_MODES}, got {combine!r}")
        if combine == "weighted":
            if weights is None or len(weights) != len(members):
                raise ValueError(f"combine='weighted' needs one weight per member ({len(members)}), got {weights}")
            if any(w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(f"ensemble weights must be non-negative with a positive sum, got {list(weights)}")
        self.members = nn.ModuleList(members)
        self.combine = combine
        w = torch.tensor(weights if weights is not None else [1.0] * len(members), dtype=torch.float32)
        self.register_buffer("weights", w / w.sum(), persistent=False)
        self.num_classes = counts[0]
        self.vectorize = vectorize
        self.groups = architecture_groups(members) if vectorize else [[i] for i in range(len(members))]
        self._stacked: dict[int, tuple[tuple, dict, dict]] = {}

    @classmethod
    def from_config(
        cls,
        checkpoint: str,
        combine: str = "mean_logits",
        weights: Sequence[float] | None = None,
        layers: Iterable[str] = (),
        vectorize: bool = True,
    ) -> "EnsembleTeacher":
        """Every member of a checkpoint directory written by `save_members`.

        `layers` names features to record: `"member0.body.conv2"` hooks one member (its features
        come back under that same name), a bare `"body.layer1"` hooks every member.
        """
        from raykd.teachers.checkpoint import load_members
        from raykd.teachers.neural_network import NeuralNetworkTeacher

        members, _ = load_members(checkpoint)
        layers = list(layers)
        qualified = [re.match(r"^member(\d+)\.(.+)$", name) for name in layers]
        for name, match in zip(layers, qualified):
            if match and int(match.group(1)) >= len(members):
                raise ValueError(f"teacher layer {name!r}: the ensemble has members 0..{len(members) - 1}")
        shared = [name for name, match in zip(layers, qualified) if match is None]
        teachers = [
            NeuralNetworkTeacher(
                m.model, layers=[mt.group(2) for mt in qualified if mt and int(mt.group(1)) == i] + shared, name=m.name
            )
            for i, m in enumerate(members)
        ]
        return cls(teachers, combine=combine, weights=weights, vectorize=vectorize)

    def forward(self, inputs: Any) -> ModelOutput:
        outputs: list[ModelOutput | None] = [None] * len(self.members)
        for group in self.groups:
            if len(group) == 1:
                outputs[group[0]] = self.members[group[0]](inputs)
            else:
                for i, out in zip(group, self._vmapped(group, inputs)):
                    outputs[i] = out
        logits = torch.stack([o.logits.float() for o in outputs])  # (K, B, C)
        features = {f"member{i}.{k}": v for i, o in enumerate(outputs) for k, v in o.features.items()}
        out = ModelOutput(logits=self.combine_logits(logits))
        out.features.update(features)
        return out

    def member_logits(self, inputs: Any) -> torch.Tensor:
        """(K, B, C) logits of every member, batched where the architecture allows."""
        outputs: list[torch.Tensor | None] = [None] * len(self.members)
        for group in self.groups:
            if len(group) == 1:
                outputs[group[0]] = self.members[group[0]](inputs).logits
            else:
                for i, out in zip(group, self._vmapped(group, inputs)):
                    outputs[i] = out.logits
        return torch.stack([o.float() for o in outputs])

    def _stacked_state(self, gid: int, group: list[int]) -> tuple[dict, dict]:
        """Stacked weights of one group, rebuilt only when a member's weights change."""
        nets = [self.members[i].net for i in group]
        tensors = [t for n in nets for t in (*n.parameters(), *n.buffers())]
        key = (torch.is_inference_mode_enabled(), tuple((t.data_ptr(), t._version, t.device) for t in tensors))
        cached = self._stacked.get(gid)
        if cached is None or cached[0] != key:
            params, buffers = stack_module_state(nets)
            cached = (key, params, buffers)
            self._stacked[gid] = cached
        return cached[1], cached[2]

    def _vmapped(self, group: list[int], inputs: torch.Tensor) -> list[ModelOutput]:
        gid = self.groups.index(group)
        params, buffers = self._stacked_state(gid, group)
        template = self.members[group[0]].net  # FeatureExtractor: its hooks still record features

        def run(p: dict, b: dict, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
            out = functional_call(template, (p, b), (x,))
            return out.logits, tuple(out.features.values())

        logits, feats = torch.vmap(run, in_dims=(0, 0, None))(params, buffers, inputs)  # (G, B, C)
        names = list(template.layers)
        return [
            ModelOutput(logits=logits[j], features=OrderedDict(zip(names, (f[j] for f in feats))))
            for j in range(len(group))
        ]

    def combine_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """(K, B, C) member logits -> (B, C) ensemble logits."""
        if self.combine == "mean_logits":
            return logits.mean(0)
        if self.combine == "weighted":
            return torch.einsum("k,kbc->bc", self.weights.to(logits.dtype), logits)
        if self.combine == "mean_probs":
            return torch.logsumexp(torch.log_softmax(logits, -1), dim=0) - math.log(logits.shape[0])
        votes = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0).to(logits.dtype)
        return torch.log(votes / logits.shape[0])

    def requirements(self) -> Requirements:
        reqs = [m.requirements() for m in self.members]
        return Requirements(
            num_cpus=max(r.num_cpus for r in reqs),
            num_gpus=max(r.num_gpus for r in reqs),
            memory_bytes=sum(r.memory_bytes for r in reqs),
            helpers=tuple(h for r in reqs for h in r.helpers),
            same_node=any(r.same_node for r in reqs),
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "combine": self.combine,
            "vectorized_groups": [g for g in self.groups if len(g) > 1],
            "members": [m.describe() for m in self.members],
        }


def architecture_key(member: Teacher) -> tuple | None:
    """What must match for members to share one vmapped forward; None when it cannot be batched."""
    from raykd.teachers.neural_network import NeuralNetworkTeacher

    if type(member) is not NeuralNetworkTeacher:
        return None
    model = member.net.model
    if not list(model.parameters()) or any(p.is_quantized for p in model.parameters()):
        return None
    shapes = tuple((n, tuple(t.shape), t.dtype, t.device) for n, t in (*model.named_parameters(), *model.named_buffers()))
    return (type(model), repr(model), shapes, tuple(member.net.layers), model.training)


def architecture_groups(members: Sequence[Teacher]) -> list[list[int]]:
    """Member indices grouped by identical architecture, in order of first appearance."""
    groups: dict[Any, list[int]] = {}
    singles: list[list[int]] = []
    order: list[Any] = []
    for i, m in enumerate(members):
        key = architecture_key(m)
        if key is None:
            singles.append([i])
            order.append(("single", len(singles) - 1))
            continue
        if key not in groups:
            groups[key] = []
            order.append(("group", key))
        groups[key].append(i)
    return [singles[ref] if tag == "single" else groups[ref] for tag, ref in order]
