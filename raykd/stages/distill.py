"""The main job, stage by stage: data → teachers → soft targets → students → report."""

from __future__ import annotations

from typing import Any

from raykd import strategies
from raykd.config import RunConfig
from raykd.report import distill_table
from raykd.stages.data import Data, check_data, load_data
from raykd.stages.run import Run, open_run
from raykd.stages.soft_targets import SoftTargets, make_soft_targets, view_spec
from raykd.stages.student import strategy_arguments, train_student
from raykd.stages.teachers import TeacherStage, prepare_teacher
from raykd.train import needs_online_teacher
from raykd.train.teaching import teacher_network_in_loop

__all__ = ["run_distill", "run_soft_targets", "uses_stored_targets"]


def uses_stored_targets(cfg: RunConfig, n_data: int) -> bool:
    """False when the teacher runs inside the workers (the strategy needs its features, or
    `student.teacher_in_workers` asks for it) or trains there with the student (Online, EMA)."""
    strategy = cfg.student.strategy
    built = strategies.build(strategy.name, **strategy_arguments(strategy, n_data))
    return not (cfg.student.teacher_in_workers or needs_online_teacher(built) or teacher_network_in_loop(cfg.teacher.kind, cfg.teacher.params))


def run_soft_targets(cfg: RunConfig, name: str = "soft_targets") -> tuple[Run, Data, TeacherStage, SoftTargets]:
    """Stages 1-3: what every student of this teacher reuses (a Tune search, several strategies)."""
    inputs = check_data(cfg.data)  # schema errors before Ray starts
    view_spec(cfg, inputs)  # and views of flat features
    run = open_run(cfg, name)
    data = load_data(run, inputs)
    teacher = prepare_teacher(run, data)
    return run, data, teacher, make_soft_targets(run, data, teacher)


def run_distill(cfg: RunConfig, name: str = "ensemble_to_student") -> dict[str, Any]:
    """Teacher, soft targets, the KD student and (unless student.baseline is off) the labels-only one."""
    inputs = check_data(cfg.data)
    view_spec(cfg, inputs)  # views of flat features fail before Ray starts
    run = open_run(cfg, name)
    data = load_data(run, inputs)
    teacher = prepare_teacher(run, data)
    soft = make_soft_targets(run, data, teacher) if uses_stored_targets(cfg, len(data.train["id"])) else None
    kd = train_student(run, data, "student_kd", cfg.student.strategy, teacher, soft)
    baseline = train_student(run, data, "student_baseline", None) if cfg.student.baseline else None
    if kd["teacher_accuracy"] is not None:
        teacher.accuracy = kd["teacher_accuracy"]  # it trained with the student: scored as it ended
    report = {
        "data": {
            "source": data.source,
            "ids": "row positions (no id column)" if data.inputs.positional_ids else "id column",
            **data.sizes(),
            "features": data.num_features,
            "classes": data.num_classes,
            "standardized": data.standardize,
        },
        "teachers": teacher.member_rows,
        "teacher": teacher.describe(),
        "soft_targets": soft.describe() if soft else None,
        "student": {"kd": kd, "baseline": baseline},
        "seed": cfg.seed,
        "config": cfg.model_dump(mode="json"),
        "seconds": run.total(),
    }
    table = distill_table(report)
    images = [s["curves_png"] for s in (kd, baseline) if s]
    run.report(report, "raykd run", table, images)
    return report
