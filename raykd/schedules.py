"""Schedules: a value that moves with training progress (temperature, alpha, a loss weight, the learning rate).

One picklable `Schedule` serves every component: the student loop sets scheduled strategy
parameters and the learning rate from it, Hybrid's component weights use it, and configs name it
as a mapping. Progress is counted in epochs (`per: epoch`, the value changes at epoch boundaries)
or in optimizer steps (`per: step`, fractional epochs).

Kinds, with `t` the progress in [0, 1] over `epochs` (clamped after it):
- constant: `value`
- linear: start → end
- cosine: half-cosine from start to end (SGDR's annealing, Loshchilov & Hutter 2017)
- exponential: start · (end / start)^t (both > 0)
- step: start before epoch `at`, end from `at` on
- progressive: `stages` equal stages, stage s holding start + (end - start) · s / stages — the
  `ProgressiveDistillation` of the tutorial seed (temperature 10 → 1, alpha 0.5 → 1)
- piecewise: `values[e]` in epoch e (the last value after them): a schedule found by a search,
  such as the values Population Based Training gave a trial's lineage epoch by epoch
`warmup` epochs first ramp linearly from 0 to the schedule's value (learning-rate warm-up).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

__all__ = ["KINDS", "PROGRESSIVE_DISTILLATION", "Schedule", "schedule_from"]

KINDS = ("constant", "linear", "cosine", "exponential", "step", "progressive", "piecewise")

# The tutorial seed's ProgressiveDistillation: 5 stages, temperature 10 → 1, alpha 0.5 → 1.
PROGRESSIVE_DISTILLATION: dict[str, dict[str, Any]] = {
    "temperature": {"kind": "progressive", "start": 10.0, "end": 1.0, "stages": 5},
    "alpha": {"kind": "progressive", "start": 0.5, "end": 1.0, "stages": 5},
}


@dataclass(frozen=True)
class Schedule:
    kind: Literal["constant", "linear", "cosine", "exponential", "step", "progressive", "piecewise"] = "constant"
    start: float = 0.0
    """The value at the start (for constant: the value)."""
    end: float | None = None
    """The value at the end; None: the start (a constant)."""
    epochs: float | None = None
    """Epochs over which the value moves from start to end; None: the whole run."""
    at: float | None = None
    """step: the epoch from which `end` holds."""
    stages: int = 5
    """progressive: the number of stages."""
    warmup: float = 0.0
    """Epochs of linear ramp from 0 before the schedule starts (used for learning rates)."""
    per: Literal["epoch", "step"] = "epoch"
    values: tuple[float, ...] | None = None
    """piecewise: the value of each epoch."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        if (self.kind == "piecewise") != (self.values is not None) or (self.values is not None and not self.values):
            raise ValueError("values (one per epoch) go with kind piecewise, and piecewise needs at least one")
        if self.values is not None:
            object.__setattr__(self, "values", tuple(float(v) for v in self.values))
            object.__setattr__(self, "start", self.values[0])
        if self.kind == "step" and self.at is None:
            raise ValueError("a step schedule needs at (the epoch from which end holds)")
        if self.kind == "exponential" and (self.start <= 0 or (self.end is not None and self.end <= 0)):
            raise ValueError(f"an exponential schedule needs start and end > 0, got {self.start} and {self.end}")
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.stages < 1:
            raise ValueError(f"stages must be >= 1, got {self.stages}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.per not in ("epoch", "step"):
            raise ValueError(f"per must be epoch or step, got {self.per!r}")

    @property
    def final(self) -> float:
        return self.start if self.end is None else self.end

    def endpoints(self) -> tuple[float, float]:
        """The extreme values the schedule takes (for range checks)."""
        return (min(self.values), max(self.values)) if self.values else (self.start, self.final)

    def value(self, epoch: float, total_epochs: float) -> float:
        """The value at `epoch` (fractional for per-step schedules) of a run of `total_epochs`."""
        if self.per == "epoch":
            epoch = math.floor(epoch)
        if epoch < self.warmup:
            return self._at(0.0, total_epochs) * (epoch + 1) / (self.warmup + 1)
        return self._at(epoch - self.warmup, max(total_epochs - self.warmup, 1e-9))

    def _at(self, epoch: float, total_epochs: float) -> float:
        if self.kind == "piecewise":
            return self.values[min(max(math.floor(epoch), 0), len(self.values) - 1)]  # type: ignore[index]
        start, end = self.start, self.final
        if self.kind == "constant" or start == end:
            return start
        if self.kind == "step":
            return start if epoch < float(self.at) else end  # type: ignore[arg-type]
        span = self.epochs if self.epochs is not None else total_epochs
        t = min(max(epoch / span, 0.0), 1.0) if span > 0 else 1.0
        if self.kind == "linear":
            return start + (end - start) * t
        if self.kind == "cosine":
            return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))
        if self.kind == "exponential":
            return start * (end / start) ** t
        stage = min(math.floor(t * self.stages), self.stages)  # progressive
        return start + (end - start) * stage / self.stages

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if v is not None}


def schedule_from(spec: Schedule | Mapping[str, Any] | float) -> Schedule:
    """A `Schedule` from itself, a number (constant) or a mapping of its fields."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Schedule("constant", float(spec))
    if not isinstance(spec, Mapping):
        raise ValueError(f"a schedule is a number or a mapping with 'kind', got {spec!r}")
    fields = set(Schedule.__dataclass_fields__)
    unknown = sorted(set(spec) - fields - {"value"})
    if unknown:
        raise ValueError(f"unknown schedule keys {unknown}; a schedule takes {sorted(fields)}")
    spec = dict(spec)
    if "value" in spec:  # {kind: constant, value: v}
        spec["start"] = spec.pop("value")
    return Schedule(**spec)
