"""Born-Again Networks (Furlanello et al. 2018) through the shared stages: generation g+1 learns
from the frozen generation g, with the same architecture, budget and student loop.

data → generation 0 (labels only) → for each g ≥ 1: generation g-1 saved as a one-member `Self`
teacher checkpoint → its soft targets → generation g (the run's logit strategy; BAN's default is
pure distillation, T=1, alpha=1) → report of each generation's test accuracy and that of the BAN
ensemble (mean of the logits of generations 0..g).

Layout of the run directory: `generation_<g>/` holds that generation's metrics.csv and curves.png,
`generation_<g>/teacher/` its weights as the next generation's teacher, and (g ≥ 1)
`generation_<g>/soft_targets/` the soft targets it learnt from; `checkpoints/` Ray Train's.
"""

from __future__ import annotations

from typing import Any

import torch

from raykd.config import BornAgainConfig
from raykd.models import count_parameters
from raykd.models.fit import accuracy, predict_logits
from raykd.report import markdown_table, pct
from raykd.stages.data import check_data, load_data
from raykd.stages.run import Run, open_run, say
from raykd.stages.soft_targets import make_soft_targets
from raykd.stages.student import train_student
from raykd.stages.teachers import TeacherStage
from raykd.teachers.checkpoint import MemberCheckpoint, save_members
from raykd.train import load_student

__all__ = ["generation_teacher", "run_born_again", "born_again_table"]


def generation_teacher(run: Run, generation: int, student: dict[str, Any]) -> TeacherStage:
    """Saves `generation`'s best student as a one-member teacher checkpoint (its generation number
    in the manifest) under `generation_<g>/teacher`, and describes it as the `Self` teacher kind."""
    model, state = load_student(student["checkpoint"])
    name = f"generation_{generation}"
    member = MemberCheckpoint(name, state["spec"], model)
    directory = save_members(run.at(name, "teacher"), [member], extra={"generation": generation})
    params = count_parameters(model)
    return TeacherStage(
        config={"kind": "Self", "checkpoint": str(directory)},
        label=f"generation {generation} (Self)",
        kind="Self",
        params=params,
        accuracy=student["accuracy"],
        members=[member],
        member_rows=[{"name": name, "params": params, "accuracy": student["accuracy"]}],
        checkpoint=str(directory),
    )


def born_again_table(report: dict[str, Any]) -> str:
    rows = [("generation", "teacher", "params", "test accuracy", "BAN ensemble (0..g)", "best val")]
    for row in report["generations"]:
        rows.append((
            str(row["generation"]),
            row["teacher"] or "labels only",
            f"{row['params']:,}",
            pct(row["accuracy"]),
            pct(row["ensemble_accuracy"]),
            pct(row["val_accuracy"]),
        ))
    strategy = report["strategy"]
    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in report["seconds"].items())
    return "\n".join([
        markdown_table(rows),
        "",
        f"generations ≥ 1 learn from the previous one with {strategy['name']} {strategy['params']}",
        f"data: {report['data']['source']}, {report['data']['train']} train / {report['data']['test']} test rows",
        f"seconds: {seconds}",
    ])


def run_born_again(cfg: BornAgainConfig, name: str = "born_again") -> dict[str, Any]:
    inputs = check_data(cfg.data)
    run = open_run(cfg, name)
    data = load_data(run, inputs)
    strategy = cfg.student.strategy
    students: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    ensemble_logits: torch.Tensor | None = None
    teacher: TeacherStage | None = None
    for g in range(cfg.born_again.generations):
        if g == 0:
            student = train_student(run, data, "generation_0", None)
        else:
            teacher = generation_teacher(run, g - 1, students[-1])
            soft = make_soft_targets(run, data, teacher, out=run.at(f"generation_{g}", "soft_targets"), name=f"soft_targets_{g}")
            student = train_student(run, data, f"generation_{g}", strategy, teacher, soft, seed=cfg.seed + g)
        students.append(student)
        model, _ = load_student(student["checkpoint"])
        logits = predict_logits(model, data.test["x"]).float()
        ensemble_logits = logits if ensemble_logits is None else ensemble_logits + logits
        row = {
            "generation": g,
            "accuracy": student["accuracy"],
            # mean of logits: the sum has the same argmax
            "ensemble_accuracy": accuracy(ensemble_logits, data.test["label"]),
            "val_accuracy": student["val_accuracy"],
            "params": student["params"],
            "teacher": teacher.label if teacher else None,
        }
        rows.append(row)
        say(f"generation {g}: test {pct(row['accuracy'])}, BAN ensemble of 0..{g} {pct(row['ensemble_accuracy'])}")
    # The last generation as a teacher too, so any run can continue from it (`teacher.kind: Self`).
    generation_teacher(run, len(students) - 1, students[-1])
    report = {
        "generations": rows,
        "students": students,
        "strategy": {"name": strategy.name, "params": dict(strategy.params)},
        "model": students[0]["model"],
        "data": {"source": data.source, **data.sizes(), "features": data.num_features, "classes": data.num_classes},
        "seed": cfg.seed,
        "config": cfg.model_dump(mode="json"),
        "seconds": run.total(),
    }
    table = born_again_table(report)
    run.report(report, "Born-again generations", table, [s["curves_png"] for s in students])
    return report
