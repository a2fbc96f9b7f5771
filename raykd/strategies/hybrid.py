"""Hybrid: a weighted, optionally scheduled, sum of strategies."""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from raykd.outputs import ModelOutput
from raykd.schedules import Schedule
from raykd.strategies.base import Strategy
from raykd.strategies.functional import check_weight
from raykd.strategies.registry import build, register

__all__ = ["Hybrid", "weight_schedule"]

_COMPONENT_KEYS = {"name", "strategy", "weight", "params", "schedule"}
_SCHEDULE_KEYS = {
    "constant": {"value"},
    "linear": {"start", "end", "epochs"},
    "cosine": {"start", "end", "epochs"},
    "step": {"start", "end", "at"},
}


class _EpochWeight:
    """A picklable epoch -> weight function over a `raykd.schedules.Schedule` (lambdas would not
    survive pickle / torch.save); a component's schedule spans its own `epochs`."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def __call__(self, epoch: int) -> float:
        return self.schedule.value(epoch, self.schedule.epochs or 1)

    def __repr__(self) -> str:
        return f"_EpochWeight({self.schedule})"


def _epochs(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def weight_schedule(spec: Callable[[int], float] | Mapping[str, Any] | float) -> Callable[[int], float]:
    """A function epoch -> weight from a callable, a number, or a dict:

    {"kind": "constant", "value": w}
    {"kind": "linear", "start": a, "end": b, "epochs": E}   a at epoch 0, b from epoch E on
    {"kind": "cosine", "start": a, "end": b, "epochs": E}   half-cosine from a to b over E epochs
    {"kind": "step", "start": a, "end": b, "at": E}         a before epoch E, b from epoch E on
    """
    if callable(spec):
        return spec  # type: ignore[return-value]
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return _EpochWeight(Schedule("constant", check_weight("weight", spec)))
    if not isinstance(spec, Mapping):
        raise ValueError(f"a schedule is a callable, a number or a dict with 'kind', got {spec!r}")
    kind = spec.get("kind")
    if kind not in _SCHEDULE_KEYS:
        raise ValueError(f"schedule kind must be one of {sorted(_SCHEDULE_KEYS)}, got {kind!r}")
    keys = set(spec) - {"kind"}
    if keys != _SCHEDULE_KEYS[kind]:
        raise ValueError(f"a {kind!r} schedule takes keys {sorted(_SCHEDULE_KEYS[kind])}, got {sorted(keys)}")
    if kind == "constant":
        return _EpochWeight(Schedule("constant", check_weight("schedule.value", spec["value"])))
    start, end = check_weight("schedule.start", spec["start"]), check_weight("schedule.end", spec["end"])
    if kind == "step":
        return _EpochWeight(Schedule("step", start, end, at=_epochs("schedule.at", spec["at"], 0)))
    return _EpochWeight(Schedule(kind, start, end, epochs=_epochs("schedule.epochs", spec["epochs"], 1)))


def _accepted_keywords(module: nn.Module) -> tuple[set[str], bool]:
    params = inspect.signature(module.forward).parameters
    names = {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return names - {"student", "teacher", "labels"}, var_kw


@register("Hybrid")
class Hybrid(Strategy):
    """Combined distillation: loss = weight · Σ_i w_i(epoch) · strategy_i(student, teacher, labels, ...).

    components: a list of dicts {"name": registered name, "weight": w, "params": {...},
    "schedule": ...} (or {"strategy": module, ...} for an already-built one), or modules
    themselves (weight 1). A schedule (see `weight_schedule`) replaces the fixed weight; the trainer
    calls `set_epoch(epoch)` (epochs from 0; before the first call the schedules read epoch 0), which
    also reaches every component. Extra keywords (index=, attention_mask=, box_mask= ...) go to the
    components whose forward takes them. `requires` is the union of the components'. Components at
    weight 0 are skipped. The last call's unweighted component losses (detached) are in
    `last_losses`, keyed by name, for logging.
    """

    requires = frozenset()

    def __init__(self, components: Sequence[Mapping[str, Any] | nn.Module], weight: float = 1.0) -> None:
        super().__init__(weight)
        if isinstance(components, (Mapping, nn.Module)) or not components:
            raise ValueError("components must be a non-empty list of strategies or {'name': ...} dicts")
        modules, schedules, names = [], [], []
        for i, spec in enumerate(components):
            if isinstance(spec, nn.Module):
                module, schedule = spec, weight_schedule(1.0)
            elif isinstance(spec, Mapping):
                unknown = set(spec) - _COMPONENT_KEYS
                if unknown:
                    raise ValueError(
                        f"components[{i}] has unknown keys {sorted(unknown)}; allowed: {sorted(_COMPONENT_KEYS)}"
                    )
                if ("name" in spec) == ("strategy" in spec):
                    raise ValueError(
                        f"components[{i}] needs exactly one of 'name' (registered) or 'strategy' (a module)"
                    )
                if "weight" in spec and "schedule" in spec:
                    raise ValueError(f"components[{i}] has both 'weight' and 'schedule'; the schedule gives the weight")
                if "strategy" in spec:
                    module = spec["strategy"]
                    if not isinstance(module, nn.Module):
                        raise ValueError(
                            f"components[{i}]['strategy'] must be an nn.Module, got {type(module).__name__}"
                        )
                    if "params" in spec:
                        raise ValueError(f"components[{i}] gives 'params' for an already-built strategy")
                else:
                    if spec["name"] == "Hybrid":
                        raise ValueError("a Hybrid cannot be built by name inside a Hybrid; pass the module")
                    module = build(spec["name"], **dict(spec.get("params", {})))
                if "schedule" in spec:
                    schedule = weight_schedule(spec["schedule"])
                else:
                    schedule = weight_schedule(check_weight(f"components[{i}].weight", spec.get("weight", 1.0)))
            else:
                raise ValueError(f"components[{i}] must be a strategy module or a dict, got {type(spec).__name__}")
            modules.append(module)
            schedules.append(schedule)
            names.append(
                spec.get("name", type(module).__name__) if isinstance(spec, Mapping) else type(module).__name__
            )
        self.components = nn.ModuleList(modules)
        self.schedules = schedules
        self.names = self._unique(names)
        self.requires = frozenset().union(*(getattr(m, "requires", frozenset()) for m in modules))
        self.last_losses: dict[str, torch.Tensor] = {}

    @staticmethod
    def _unique(names: list[str]) -> list[str]:
        seen: dict[str, int] = {}
        out = []
        for n in names:
            seen[n] = seen.get(n, 0) + 1
            out.append(n if names.count(n) == 1 else f"{n}_{seen[n]}")
        return out

    def component_weights(self) -> dict[str, float]:
        """Each component's weight at the current epoch."""
        epoch = 0 if self.epoch is None else self.epoch
        weights = {}
        for name, schedule in zip(self.names, self.schedules):
            w = float(schedule(epoch))
            if not (w >= 0 and math.isfinite(w)):
                raise ValueError(
                    f"the schedule of component {name!r} gave weight {w} at epoch {epoch}; weights must be >= 0"
                )
            weights[name] = w
        return weights

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        for module in self.components:
            if hasattr(module, "set_epoch"):
                module.set_epoch(epoch)

    def prepare(self, teacher_outputs: Callable[[], Iterable[ModelOutput]]) -> None:
        for module in self.components:
            if hasattr(module, "prepare"):
                module.prepare(teacher_outputs)

    def materialize(self, student: ModelOutput, teacher: ModelOutput) -> "Hybrid":
        for module in self.components:
            if hasattr(module, "materialize"):
                module.materialize(student, teacher)
        return self

    def forward(
        self, student: ModelOutput, teacher: ModelOutput, labels: torch.Tensor | None = None, **extra: Any
    ) -> torch.Tensor:
        accepted = [_accepted_keywords(m) for m in self.components]
        unused = set(extra) - set().union(*(names for names, var_kw in accepted if not var_kw))
        if unused and not any(var_kw for _, var_kw in accepted):
            raise TypeError(f"no component of this Hybrid takes the keyword(s) {sorted(unused)}")
        total = student.logits.new_zeros(())
        self.last_losses = {}
        for (name, w), module, (names, var_kw) in zip(self.component_weights().items(), self.components, accepted):
            if w == 0.0:
                continue
            kwargs = extra if var_kw else {k: v for k, v in extra.items() if k in names}
            value = module(student, teacher, labels, **kwargs)
            self.last_losses[name] = value.detach()
            total = total + w * value
        return self.weight * total
