"""Typed pipeline configuration: YAML and flags in, validated dataclasses out.

Everything is checked before Ray starts; an error names the dotted field, the flag that sets it
and the value received, e.g. `student.alpha (--alpha) must be in [0, 1], got 1.5`.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConfigError", "DataConfig", "TeacherConfig", "SoftTargetConfig", "StudentConfig", "PipelineConfig", "parse_args"]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the fix."""


def _fail(path: str, message: str) -> None:
    flag = FLAGS.get(path)
    raise ConfigError(f"{path}{f' ({flag})' if flag else ''} {message}")


def _in_unit(path: str, value: float, low_open: bool = False, high_open: bool = False) -> None:
    if not ((0 < value if low_open else 0 <= value) and (value < 1 if high_open else value <= 1)):
        _fail(path, f"must be in {'(' if low_open else '['}0, 1{')' if high_open else ']'}, got {value}")


def _at_least(path: str, value: float, low: float) -> None:
    if value is None or value < low:
        _fail(path, f"must be >= {low}, got {value}")


@dataclass
class DataConfig:
    path: str | None = None
    """Parquet file or directory; None uses the embedded scikit-learn digits."""
    id_column: str = "id"
    label_column: str = "label"
    feature_columns: list[str] | None = None
    """Default: every numeric column except id and label."""
    split_seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    limit: int | None = None
    """Use only the first N rows (quick runs and tests)."""

    def validate(self) -> None:
        if self.path is not None and not Path(self.path).exists():
            _fail("data.path", f"does not exist: {self.path!r}; give a Parquet file or directory")
        _in_unit("data.val_fraction", self.val_fraction, low_open=True, high_open=True)
        _in_unit("data.test_fraction", self.test_fraction, low_open=True, high_open=True)
        if self.val_fraction + self.test_fraction >= 0.9:
            _fail("data.val_fraction", f"+ data.test_fraction must leave >= 10% for training, got {self.val_fraction + self.test_fraction}")
        if self.limit is not None:
            _at_least("data.limit", self.limit, 50)


@dataclass
class TeacherConfig:
    kind: str = "Ensemble"
    """A `TeacherModelType` name; the soft-target actors build it with `teachers.build_from_config`
    from the member checkpoint and `params`."""
    params: dict[str, Any] = field(default_factory=dict)
    """Extra arguments of the kind's `from_config` (e.g. combine: vote for Ensemble)."""
    layers: list[str] | None = None
    """Teacher features for feature strategies; default: the first member's last feature layers,
    as many as the student has ("member0.fc" for an Ensemble)."""
    checkpoint: str | None = None
    """A directory of teacher weights (safetensors + teachers.json); None trains new teachers."""
    members: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"type": "cnn", "channels": [32, 64], "dropout": 0.2},
            {"type": "cnn", "channels": [16, 32], "dropout": 0.2},
            {"type": "mlp", "hidden": [512], "dropout": 0.1},
        ]
    )
    """One architecture spec per ensemble member (raykd.models.build_model without the sizes,
    which come from the data); member i is trained with seed+i."""
    epochs: int = 30
    lr: float = 1e-3

    def validate(self) -> None:
        from raykd import teachers

        if self.checkpoint is not None and not Path(self.checkpoint).is_dir():
            _fail("teacher.checkpoint", f"is not a directory: {self.checkpoint!r}")
        from raykd.models import ARCHITECTURES

        if not self.members:
            _fail("teacher.members", "must list at least one architecture spec")
        for i, spec in enumerate(self.members):
            if not isinstance(spec, dict) or spec.get("type") not in ARCHITECTURES:
                _fail(f"teacher.members[{i}]", f"must be a mapping with type in {sorted(ARCHITECTURES)}, got {spec!r}")
        _at_least("teacher.epochs", self.epochs, 1)
        if not self.lr > 0:
            _fail("teacher.lr", f"must be > 0, got {self.lr}")
        if self.kind not in teachers.available():
            _fail("teacher.kind", f"must be one of {teachers.available()}, got {self.kind!r}")


@dataclass
class SoftTargetConfig:
    k: int | None = None
    """Classes kept per sample; None keeps all."""
    batch_size: int = 4096
    """Rows per teacher call and per part file: thousands keep the teacher busy."""
    pool_size: int = 1
    """Teacher actors (replicas) in the pool."""
    num_cpus: float = 0.5
    """CPUs per teacher actor: keep it fractional on small machines so reads never starve."""
    num_gpus: float = 0.0
    decode: str = "renormalize"
    """Top-k decoding for the KD loss: renormalize over the k classes, or residual (spread the
    remaining probability mass over the other classes, from the stored logsumexp)."""

    def validate(self) -> None:
        if self.decode not in ("renormalize", "residual"):
            _fail("soft_targets.decode", f"must be 'renormalize' or 'residual', got {self.decode!r}")
        if self.k is not None:
            _at_least("soft_targets.k", self.k, 1)
        _at_least("soft_targets.batch_size", self.batch_size, 1)
        _at_least("soft_targets.pool_size", self.pool_size, 1)
        if not self.num_cpus > 0:
            _fail("soft_targets.num_cpus", f"must be > 0, got {self.num_cpus}")
        _at_least("soft_targets.num_gpus", self.num_gpus, 0)


@dataclass
class StudentConfig:
    model: dict[str, Any] = field(default_factory=lambda: {"type": "mlp", "hidden": [256]})
    """Architecture spec without sizes (they come from the data), as for teacher members."""
    layers: list[str] | None = None
    """Student features for feature strategies; default: the model's `feature_layers`."""
    strategy: str = "ResponseBased"
    temperature: float = 4.0
    alpha: float = 0.9
    params: dict[str, Any] = field(default_factory=dict)
    """Extra constructor arguments of the strategy."""
    epochs: int = 40
    batch_size: int = 32
    """Per worker."""
    lr: float = 3e-3
    num_workers: int = 2
    use_gpu: bool = False
    cpus_per_worker: float = 0.5
    checkpoint_every: int = 1
    keep_best: int = 1
    early_stopping: bool = False
    min_delta: float = 0.001
    patience: int = 5
    max_failures: int = 0
    cache_shards: bool | None = None
    """Keep worker shards in memory after the first epoch; None: only if the train split < 512 MiB."""
    baseline: bool = True
    """Also train the same student on labels only, for comparison."""

    def validate(self) -> None:
        from raykd import strategies

        if self.strategy not in strategies.available():
            _fail("student.strategy", f"must be one of {strategies.available()}, got {self.strategy!r}")
        if not self.temperature > 0:
            _fail("student.temperature", f"must be > 0, got {self.temperature}")
        _in_unit("student.alpha", self.alpha)
        from raykd.models import ARCHITECTURES

        if not isinstance(self.model, dict) or self.model.get("type") not in ARCHITECTURES:
            _fail("student.model", f"must be a mapping with type in {sorted(ARCHITECTURES)}, got {self.model!r}")
        _at_least("student.epochs", self.epochs, 1)
        _at_least("student.batch_size", self.batch_size, 1)
        if not self.lr > 0:
            _fail("student.lr", f"must be > 0, got {self.lr}")
        _at_least("student.num_workers", self.num_workers, 1)
        if not self.cpus_per_worker > 0:
            _fail("student.cpus_per_worker", f"must be > 0, got {self.cpus_per_worker}")
        _at_least("student.checkpoint_every", self.checkpoint_every, 1)
        _at_least("student.keep_best", self.keep_best, 1)
        _at_least("student.min_delta", self.min_delta, 0)
        _at_least("student.patience", self.patience, 1)
        _at_least("student.max_failures", self.max_failures, 0)


@dataclass
class PipelineConfig:
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    soft_targets: SoftTargetConfig = field(default_factory=SoftTargetConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    seed: int = 0
    """Seeds teacher member i with seed+i and the student with seed."""
    output: str | None = None
    """Run directory; default a new folder under runs/."""

    def validate(self) -> "PipelineConfig":
        for section in (self.data, self.teacher, self.soft_targets, self.student):
            section.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "PipelineConfig":
        return _build(cls, raw, "")


def _build(cls: type, raw: Any, prefix: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {[prefix + k for k in unknown]}; known: {[prefix + k for k in fields]}")
    values = {}
    for name, value in raw.items():
        sub = SECTIONS.get(name) if not prefix else None
        values[name] = _build(sub, value, f"{name}.") if sub else value
    return cls(**values)


SECTIONS = {"data": DataConfig, "teacher": TeacherConfig, "soft_targets": SoftTargetConfig, "student": StudentConfig}

# flag -> dotted field; one table drives the parser and the error messages.
_FLAG_FIELDS = {
    "--data": ("data.path", str),
    "--id-column": ("data.id_column", str),
    "--label-column": ("data.label_column", str),
    "--limit": ("data.limit", int),
    "--teachers": ("teacher.checkpoint", str),
    "--teacher-kind": ("teacher.kind", str),
    "--teacher-epochs": ("teacher.epochs", int),
    "--k": ("soft_targets.k", int),
    "--pool-size": ("soft_targets.pool_size", int),
    "--decode": ("soft_targets.decode", str),
    "--strategy": ("student.strategy", str),
    "--temperature": ("student.temperature", float),
    "--alpha": ("student.alpha", float),
    "--epochs": ("student.epochs", int),
    "--batch-size": ("student.batch_size", int),
    "--lr": ("student.lr", float),
    "--num-workers": ("student.num_workers", int),
    "--max-failures": ("student.max_failures", int),
    "--seed": ("seed", int),
    "--output": ("output", str),
}
FLAGS = {path: flag for flag, (path, _) in _FLAG_FIELDS.items()} | {"student.use_gpu": "--use-gpu"}


def parse_args(argv: list[str] | None = None, description: str = "") -> PipelineConfig:
    """Flags override the YAML file given by --config; the result is validated."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", help="YAML file with data/teacher/soft_targets/student sections")
    for flag, (path, kind) in _FLAG_FIELDS.items():
        parser.add_argument(flag, type=kind, default=None, help=f"sets {path}")
    parser.add_argument("--use-gpu", action="store_true", default=None, help="sets student.use_gpu")
    parser.add_argument("--no-baseline", action="store_true", help="skip the labels-only student")
    args = parser.parse_args(argv)
    raw: dict[str, Any] = {}
    if args.config:
        raw = yaml.safe_load(Path(args.config).read_text()) or {}
    overrides = {path: getattr(args, flag[2:].replace("-", "_")) for flag, (path, _) in _FLAG_FIELDS.items()}
    overrides["student.use_gpu"] = args.use_gpu
    overrides["student.baseline"] = False if args.no_baseline else None
    for path, value in overrides.items():
        if value is None:
            continue
        *sections, key = path.split(".")
        target = raw
        for s in sections:
            target = target.setdefault(s, {})
        target[key] = value
    try:
        return PipelineConfig.from_dict(raw).validate()
    except ConfigError as err:
        parser.error(str(err))
        raise  # parser.error exits; this keeps type checkers honest
