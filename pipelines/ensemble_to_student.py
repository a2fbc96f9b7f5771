"""Ensemble teachers -> Ray Data soft targets -> Ray Train student, with a labels-only baseline.

Runs on a local Ray (`python pipelines/ensemble_to_student.py`) or on a cluster
(`ray job submit --working-dir . -- python pipelines/ensemble_to_student.py`), and writes
<output>/report.json and <output>/report.md.
"""

from __future__ import annotations

import functools
import inspect
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from raykd import strategies
from raykd.config import PipelineConfig, parse_args
from raykd.data import InputSpec, read_inputs, resolve_inputs, split_inputs, to_numpy
from raykd.models import build_model, count_parameters
from raykd.models.fit import accuracy, predict_logits
from raykd.runtime import init_ray
from raykd.report import StageTimer, format_table, write_report
from raykd.soft_targets import (
    SoftTargetMeta,
    SoftTargetRun,
    generate_soft_targets,
    join_with_inputs,
    list_parts,
    read_soft_targets,
    teacher_fingerprint,
)
from raykd.teachers import build_from_config, config_params
from raykd.teachers.train import train_or_load_members
from raykd.train import StudentRunConfig, fit_student, load_student
from raykd.train.loop import needs_online_teacher


@dataclass
class Prepared:
    """What stages 1-3 hand to the students: data, teachers and the soft targets on disk."""

    out: Path
    num_features: int
    num_classes: int
    splits: dict
    train: dict
    test: dict
    members: list
    teacher_config: dict
    teachers: list
    ensemble: dict
    soft: SoftTargetRun
    kd_train: object  # the train split joined with its soft targets (a Ray Dataset)


def prepare(cfg: PipelineConfig, timer: StageTimer) -> Prepared:
    out = Path(cfg.output or Path("runs") / time.strftime("ensemble_to_student-%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # Inside `ray job submit` this connects to the job's cluster; elsewhere it starts a local one.
    init_ray()

    # 1. Data: the embedded digits or the user's Parquet, split by a hash of the id.
    with timer.stage("data"):
        inputs = resolve_inputs(
            InputSpec(cfg.data.path, cfg.data.id_column, cfg.data.label_column, tuple(cfg.data.feature_columns or ()) or None)
        )
        splits = split_inputs(read_inputs(inputs, cfg.data.limit), cfg.data.split_seed, cfg.data.val_fraction, cfg.data.test_fraction)
        splits = {name: ds.materialize() for name, ds in splits.items()}
        train, test = to_numpy(splits["train"]), to_numpy(splits["test"])
        num_classes = int(inputs.num_classes)

    # 2. Teachers: trained in parallel as Ray tasks, or loaded from safetensors.
    with timer.stage("teachers"):
        teacher_dir = out / "teachers"
        members = train_or_load_members(
            teacher_dir, cfg.teacher.checkpoint, cfg.teacher.members, inputs.num_features, num_classes,
            train["x"], train["label"], cfg.teacher.epochs, cfg.teacher.lr, cfg.seed,
        )
        # Kinds that wrap trained weights read the members from `checkpoint`; others (Pretrained,
        # Transformer) take their own paths from teacher.params.
        accepted = config_params(cfg.teacher.kind)
        checkpoint = {"checkpoint": str(teacher_dir)} if accepted is None or "checkpoint" in accepted else {}
        teacher_config = {"kind": cfg.teacher.kind, **checkpoint, **cfg.teacher.params}
        teacher = build_from_config(teacher_config)
        if teacher.num_classes != num_classes:
            raise ValueError(f"teachers predict {teacher.num_classes} classes but the labels have {num_classes}")
        teachers = [
            {"name": m.name, "params": count_parameters(m.model), "accuracy": accuracy(predict_logits(m.model, test["x"]), test["label"])}
            for m in members
        ]
        ensemble = {
            "kind": cfg.teacher.kind,
            "accuracy": accuracy(teacher.predict(torch.as_tensor(test["x"])).logits, test["label"]),
            "params": count_parameters(teacher),
            "combine": getattr(teacher, "combine", None),
            "checkpoint": str(teacher_dir),
        }

    # 3. Soft targets: the train split streamed through a teacher actor pool into Parquet.
    with timer.stage("soft_targets"):
        k = cfg.soft_targets.k or num_classes
        meta = SoftTargetMeta(teacher=teacher.describe(), teacher_hash=teacher_fingerprint(teacher), num_classes=num_classes, k=k)
        soft = generate_soft_targets(
            splits["train"],
            functools.partial(build_from_config, teacher_config),
            out / "soft_targets",
            meta,
            batch_size=cfg.soft_targets.batch_size,
            pool_size=cfg.soft_targets.pool_size,
            num_cpus=cfg.soft_targets.num_cpus,
            num_gpus=cfg.soft_targets.num_gpus,
        )
        soft_ds, _ = read_soft_targets(soft.path)
        kd_train = join_with_inputs(splits["train"], soft_ds, expected_rows=len(train["id"]))
    return Prepared(out, inputs.num_features, num_classes, splits, train, test, members, teacher_config, teachers, ensemble, soft, kd_train)


def train_student(cfg: PipelineConfig, prep: Prepared, strategy: str | None, name: str) -> dict:
    """4. One student on Ray Train: with `strategy` on the inputs joined with their soft targets,
    or on labels only (`strategy=None`). Strategies that need teacher features run the teacher
    inside each worker instead."""
    s = cfg.student
    student_spec = {**s.model, "in_features": prep.num_features, "num_classes": prep.num_classes}
    student_layers = s.layers or list(build_model(student_spec).feature_layers)
    params = strategy_params(s, n_data=int(prep.train["id"].max()) + 1) if strategy else {}
    online_config = prep.teacher_config
    if strategy and needs_online_teacher(strategies.build(strategy, **params)):
        online_config = {**online_config, "layers": cfg.teacher.layers or default_teacher_layers(cfg, prep.members, student_layers)}
    run_cfg = StudentRunConfig(
        model_spec=student_spec,
        num_classes=prep.num_classes,
        strategy=strategy,
        strategy_params=params,
        epochs=s.epochs,
        batch_size=s.batch_size,
        lr=s.lr,
        seed=cfg.seed,
        checkpoint_every=s.checkpoint_every,
        keep_best=s.keep_best,
        early_stopping=s.early_stopping,
        min_delta=s.min_delta,
        patience=s.patience,
        decode=cfg.soft_targets.decode,
        cache_shards=s.cache_shards if s.cache_shards is not None else prep.splits["train"].size_bytes() < 512 * 2**20,
        student_layers=student_layers,
        teacher_factory=functools.partial(build_from_config, online_config),
    )
    fit = fit_student(
        run_cfg,
        prep.kd_train if strategy else prep.splits["train"],
        prep.splits["val"],
        name=name,
        storage_path=prep.out / "checkpoints",
        num_workers=s.num_workers,
        use_gpu=s.use_gpu,
        cpus_per_worker=s.cpus_per_worker,
        max_failures=s.max_failures,
    )
    model, _ = load_student(fit.best_checkpoint)
    return {
        "accuracy": accuracy(predict_logits(model, prep.test["x"]), prep.test["label"]),
        "val_accuracy": fit.best_val_accuracy,
        "epochs": int(fit.last_metrics.get("epoch", s.epochs - 1)) + 1,
        "epoch_seconds": float(fit.last_metrics.get("epoch_seconds", float("nan"))),
        "fit_seconds": fit.seconds,
        "params": count_parameters(model),
        "checkpoint": fit.best_checkpoint,
    }


def run(cfg: PipelineConfig) -> dict:
    timer = StageTimer()
    prep = prepare(cfg, timer)
    s = cfg.student
    with timer.stage("student_kd"):
        kd = train_student(cfg, prep, s.strategy, "student_kd")
    baseline = None
    if s.baseline:
        with timer.stage("student_baseline"):
            baseline = train_student(cfg, prep, None, "student_baseline")

    soft = prep.soft
    report = {
        "teachers": prep.teachers,
        "ensemble": prep.ensemble,
        "student": {
            "params": kd["params"],
            "model": s.model,
            "strategy": s.strategy,
            "temperature": s.temperature,
            "alpha": s.alpha,
            "kd": kd,
            "baseline": baseline,
        },
        "soft_targets": {
            "path": soft.path,
            "rows": soft.rows,
            "k": cfg.soft_targets.k or prep.num_classes,
            "parts": soft.parts,
            "bytes_per_sample": sum(p.stat().st_size for p in list_parts(soft.path)) / soft.rows,
        },
        "data": {
            "source": cfg.data.path or "sklearn digits (embedded)",
            "train": len(prep.train["id"]),
            "val": int(prep.splits["val"].count()),
            "test": len(prep.test["id"]),
        },
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "seconds": timer.total(),
    }
    write_report(prep.out, report)
    print(format_table(report))
    print(f"\nreport: {prep.out / 'report.json'}  {prep.out / 'report.md'}")
    return report


def strategy_params(s, n_data: int) -> dict:
    """The strategy's constructor arguments, by what its constructor takes: student.temperature
    and student.alpha, the dataset size for a memory bank (n_data, with at most n_data negatives
    nce_k), then the user's `student.params`, which win."""
    accepted = inspect.signature(strategies.STRATEGIES.get(s.strategy)).parameters
    offered = {"temperature": s.temperature, "alpha": s.alpha, "n_data": n_data, "nce_k": min(16384, n_data)}
    return {**{k: v for k, v in offered.items() if k in accepted}, **s.params}


def default_teacher_layers(cfg: PipelineConfig, members, student_layers: list[str]) -> list[str]:
    """The first member's layers of the same names as the student's where it has them all, else
    its last len(student_layers) feature layers; qualified by member for an Ensemble."""
    available = list(getattr(members[0].model, "feature_layers", []))
    names = student_layers if set(student_layers) <= set(available) else available[-len(student_layers):]
    if len(names) != len(student_layers):
        raise ValueError(
            f"the first teacher member has feature layers {available}, fewer than the student's {student_layers}; "
            "set teacher.layers"
        )
    return [f"member0.{n}" for n in names] if cfg.teacher.kind == "Ensemble" else names


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv, description=__doc__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
