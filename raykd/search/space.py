"""The search section of a run's YAML: what Ray Tune varies, checked before any trial starts.

A search is a run config plus `search:`. Each trial is that run with the strategy, the
temperature and alpha schedules (shape, start, end), the learning rate and any strategy weight
drawn from the ranges here; `trial_config` turns a trial's draw back into a plain `RunConfig`, so
the best trial's config is a file `raykd run --config` takes.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from raykd.config import ConfigError, RunConfig, Section, StrategyConfig, StudentConfig, _fail, check_strategy

__all__ = ["Range", "ScheduleRange", "SearchSection", "SearchConfig", "param_space", "trial_config", "mutations", "clip_to_ranges"]

SCHEDULE_KINDS = ("constant", "linear", "cosine", "exponential")


class Range(Section):
    """A uniform draw from [low, high] (`log`: on a log scale), or a grid over `values` (every
    value once per `num_samples`)."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    values: list[float] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if self.values is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either values (a grid) or low and high (a draw), not both")
            self.low, self.high = min(self.values), max(self.values)
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (a draw) or values (a grid)")
        if not self.low <= self.high:
            raise ValueError(f"low must be <= high, got {self.low} and {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        return self


class ScheduleRange(Section):
    """A schedule drawn per trial: its shape from `kinds`, its start and end values from the ranges
    (a constant uses `start` only)."""

    kinds: list[Literal["constant", "linear", "cosine", "exponential"]] = Field(default_factory=lambda: ["constant"], min_length=1)
    start: Range
    end: Range | None = None

    @model_validator(mode="after")
    def _end_for_shapes(self) -> "ScheduleRange":
        if self.end is None and set(self.kinds) - {"constant"}:
            raise ValueError(f"kinds {self.kinds} move from start to end: give end: {{low, high}}")
        return self

    def bounds(self) -> tuple[float, float]:
        ends = [self.start] + ([self.end] if self.end else [])
        return min(r.low for r in ends), max(r.high for r in ends)


class SearchSection(Section):
    strategies: list[str] | None = None
    """Strategies to choose from; None: the run's `student.strategy.name` only."""
    every_strategy: bool = False
    """Try every strategy in turn (a grid: num_samples trials each) instead of drawing one per trial."""
    strategy_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Fixed parameters per strategy, e.g. `{DecoupledKD: {beta: 4}}`."""
    temperature: ScheduleRange | None = None
    alpha: ScheduleRange | None = None
    lr: Range | None = None
    weights: dict[str, Range] = Field(default_factory=dict)
    """Any other strategy parameter by name (a loss weight such as DecoupledKD's `beta`)."""
    num_samples: int = Field(8, ge=1)
    """Trials (the budget)."""
    scheduler: Literal["asha", "fifo", "pbt"] = "asha"
    """asha stops trials that trail at each rung (epochs `grace_period`, ×`reduction_factor`);
    pbt (Population Based Training) lets the trials in the bottom `quantile_fraction` take over a
    top trial's weights and config every `perturbation_interval` epochs, then moves its
    temperature, alpha, lr and weights within their ranges: the schedule is what PBT makes."""
    grace_period: int = Field(1, ge=1)
    reduction_factor: int = Field(2, ge=2)
    perturbation_interval: int = Field(1, ge=1)
    """pbt: epochs between a trial's chances to take over a better trial and move its values."""
    quantile_fraction: float = Field(0.25, gt=0, le=0.5)
    synch: bool = False
    """pbt: wait for every trial to reach each interval (exact quantiles, idle workers) instead of
    comparing a trial with the others' latest scores as it arrives."""
    metric: Literal["val_accuracy"] = "val_accuracy"
    """What trials are ranked and stopped by (validation accuracy, per epoch)."""
    max_concurrent: int = Field(2, ge=1)
    trial_cpus: float = Field(0.1, gt=0)
    """What the trial's driver function holds; its student's workers ask for `student.*` resources."""
    trial_workers: int = Field(1, ge=1)
    """Ray Train workers per trial (student.num_workers for the trials)."""


class SearchConfig(RunConfig):
    """A run plus the search that varies it: the teacher and soft targets are made once."""

    student: StudentConfig = Field(default_factory=lambda: StudentConfig(epochs=6, baseline=False))
    search: SearchSection = Field(default_factory=SearchSection)

    FLAG_PATHS: ClassVar[dict[str, str]] = {
        **{f: p for f, p in RunConfig.FLAG_PATHS.items() if p not in ("student.strategy.name", "student.strategy.params.temperature", "student.strategy.params.alpha")},
        "--strategies": "search.strategies",
        "--num-samples": "search.num_samples",
        "--scheduler": "search.scheduler",
        "--max-concurrent": "search.max_concurrent",
    }
    SWITCHES: ClassVar[dict[str, tuple[str, Any]]] = {"--use-gpu": ("student.use_gpu", True)}
    COMMAND: ClassVar[str] = "tune"

    def check(self) -> "SearchConfig":
        super().check()
        check_search(self)
        return self


def _takes(name: str) -> list[str]:
    from raykd import strategies

    return list(inspect.signature(strategies.STRATEGIES.get(name)).parameters)


def check_search(cfg: SearchConfig) -> None:
    """Every strategy exists and takes its fixed params; every searched quantity is taken by at
    least one chosen strategy and stays in its range at both bounds."""
    s = cfg.search
    names = s.strategies or [cfg.student.strategy.name]
    for i, name in enumerate(names):
        check_strategy(f"search.strategies[{i}]", name, s.strategy_params.get(name, {}))
    for name in s.strategy_params:
        if name not in names:
            _fail(f"search.strategy_params.{name}", s.strategy_params[name], f"names a strategy the search does not choose; it chooses {names}")
    if s.temperature is not None:
        low, _ = s.temperature.bounds()
        if low <= 0:
            _fail("search.temperature", s.temperature.model_dump(), "reaches a temperature <= 0; temperatures must stay > 0")
    if s.alpha is not None:
        low, high = s.alpha.bounds()
        if low < 0 or high > 1:
            _fail("search.alpha", s.alpha.model_dump(), f"reaches alpha outside [0, 1] ({low} .. {high})")
    if s.lr is not None and s.lr.low <= 0:
        _fail("search.lr", s.lr.model_dump(), "must stay > 0 (a learning rate)")
    if s.scheduler == "pbt":
        _check_pbt(cfg)
    searched = {k: v for k, v in {"temperature": s.temperature, "alpha": s.alpha, **s.weights}.items() if v is not None}
    for key, value in searched.items():
        takers = [n for n in names if key in _takes(n)]
        if not takers:
            _fail(f"search.{key}" if key in ("temperature", "alpha") else f"search.weights.{key}", value.model_dump(), f"is a parameter none of the chosen strategies {names} takes")
        for bound in _bounds(value):
            for name in takers:
                try:
                    check_strategy(f"search.{key}", name, {**s.strategy_params.get(name, {}), key: bound})
                except ConfigError as err:
                    raise ConfigError(f"search.{key}: {key}={bound} is refused by {name}: {str(err).rsplit('refuses it: ', 1)[-1]}") from None


def _check_pbt(cfg: SearchConfig) -> None:
    """PBT clones a trial's single training process and moves values it can set mid-run."""
    s = cfg.search
    for key in ("temperature", "alpha"):
        schedule: ScheduleRange | None = getattr(s, key)
        if schedule is not None and schedule.kinds != ["constant"]:
            _fail(f"search.{key}.kinds", schedule.kinds, "must be [constant] with scheduler: pbt; PBT moves the value between intervals, which makes the schedule")
    if not (s.temperature or s.alpha or s.lr or s.weights):
        _fail("search.scheduler", "pbt", "has nothing to move: give search.temperature, alpha, lr or weights ranges")
    if s.trial_workers != 1:
        _fail("search.trial_workers", s.trial_workers, "must be 1 with scheduler: pbt (a trial trains in its own process so PBT can clone it; use one GPU per trial)")
    if cfg.student.zero_stage:
        _fail("student.zero_stage", cfg.student.zero_stage, "must be 0 with scheduler: pbt (ZeRO shards across workers; PBT trials train on one)")
    if s.perturbation_interval >= cfg.student.epochs:
        _fail("search.perturbation_interval", s.perturbation_interval, f"must be below student.epochs ({cfg.student.epochs}), or PBT never acts")


def mutations(cfg: SearchConfig) -> dict[str, Any]:
    """What PBT may move between intervals: the searched values, each within its range."""
    from ray import tune

    def domain(r: Range) -> Any:
        if r.values is not None:
            return list(r.values)
        return tune.loguniform(r.low, r.high) if r.log else tune.uniform(r.low, r.high)

    s = cfg.search
    moved: dict[str, Any] = {key: {"start": domain(getattr(s, key).start)} for key in ("temperature", "alpha") if getattr(s, key)}
    if s.lr is not None:
        moved["lr"] = domain(s.lr)
    if s.weights:
        moved["weights"] = {k: domain(r) for k, r in s.weights.items()}
    return moved


def clip_to_ranges(cfg: SearchConfig) -> Any:
    """PBT's explore step multiplies a value by 0.8 or 1.2 without bounds: this puts every moved
    value back into its range (an alpha above 1 or a temperature below the floor is refused)."""
    s = cfg.search
    ranges = {("temperature", "start"): s.temperature and s.temperature.start, ("alpha", "start"): s.alpha and s.alpha.start, ("lr",): s.lr}
    ranges.update({("weights", k): r for k, r in s.weights.items()})

    def clip(config: dict[str, Any]) -> dict[str, Any]:
        for path, r in ranges.items():
            if r is None:
                continue
            holder = config
            for key in path[:-1]:
                holder = holder[key]
            holder[path[-1]] = min(max(holder[path[-1]], r.low), r.high)
        return config

    return clip


def _bounds(value: Range | ScheduleRange) -> tuple[float, float]:
    return value.bounds() if isinstance(value, ScheduleRange) else (value.low, value.high)


def param_space(cfg: SearchConfig) -> dict[str, Any]:
    """The Tune search space of `cfg.search`."""
    from ray import tune

    def draw(r: Range) -> Any:
        if r.values is not None:
            return tune.grid_search(r.values)
        return tune.loguniform(r.low, r.high) if r.log else tune.uniform(r.low, r.high)

    s = cfg.search
    names = s.strategies or [cfg.student.strategy.name]
    space: dict[str, Any] = {"strategy": tune.grid_search(names) if s.every_strategy else tune.choice(names)}
    for key in ("temperature", "alpha"):
        schedule: ScheduleRange | None = getattr(s, key)
        if schedule is not None:
            space[key] = {"kind": tune.choice(schedule.kinds), "start": draw(schedule.start), **({"end": draw(schedule.end)} if schedule.end else {})}
    if s.lr is not None:
        space["lr"] = draw(s.lr)
    if s.weights:
        space["weights"] = {k: draw(r) for k, r in s.weights.items()}
    return space


def trial_config(cfg: SearchConfig, draw: dict[str, Any]) -> RunConfig:
    """The plain run config of one trial: the draw applied to the search's run. A searched
    quantity the trial's strategy does not take is left out for that trial."""
    name = draw["strategy"]
    takes = _takes(name)
    params = dict(cfg.search.strategy_params.get(name, {}))
    params.update({k: v for k, v in draw.get("weights", {}).items() if k in takes})
    schedules = {k: v for k, v in cfg.student.schedules.items() if k == "lr" or k in takes}
    for key in ("temperature", "alpha"):
        if key in draw and key in takes:
            d = draw[key]
            schedules[key] = {"kind": "constant", "start": d["start"]} if d["kind"] == "constant" else {"kind": d["kind"], "start": d["start"], "end": d["end"]}
    student = cfg.student.model_dump(mode="json") | {
        "strategy": StrategyConfig(name=name, params=params).model_dump(mode="json"),
        "schedules": {k: v if isinstance(v, dict) else v.to_dict() for k, v in schedules.items()},
        "num_workers": cfg.search.trial_workers,
        **({"lr": draw["lr"]} if "lr" in draw else {}),
    }
    raw = cfg.model_dump(mode="json", exclude={"search"}) | {"student": student}
    return RunConfig.model_validate(raw).check()
