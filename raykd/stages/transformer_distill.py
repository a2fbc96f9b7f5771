"""Sentence-embedding distillation through the shared stages: teacher → stored embeddings → student.

teacher (the Transformer kind, all-MiniLM-L6-v2 by default) → its pooled embedding of every
packaged sentence, stored once (`raykd.stages.text`) → one student on Ray Train with the run's
strategy (from the stored embeddings, or with the teacher inside the workers for token states and
attention maps) → report: the student's embedding cosine to the teacher on held-out sentences,
its parameters and their ratio to the teacher's.
"""

from __future__ import annotations

from typing import Any

from raykd.config import TransformerDistillConfig
from raykd.report import markdown_table
from raykd.stages.run import open_run
from raykd.stages.student import train_student
from raykd.stages.text import embed_sentences, prepare_text_teacher

__all__ = ["run_transformer_distill", "transformer_table"]


def transformer_table(report: dict[str, Any]) -> str:
    teacher, student = report["teacher"], report["student"]
    rows = [("model", "params", "held-out embedding cosine")]
    rows.append((teacher["label"], f"{teacher['params']:,}", "1 (itself)"))
    rows.append((f"student ({student['strategy']})", f"{student['params']:,}", f"{student['embedding_cosine']:.4f}"))
    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in report["seconds"].items())
    sizes = report["data"]
    return "\n".join([
        markdown_table(rows),
        "",
        f"student/teacher parameters: {report['params_ratio']:.4f}",
        f"teacher targets: {'run inside the Ray Train workers' if report['teacher_in_workers'] else 'stored pooled embeddings'} "
        f"({report['soft_targets']['rows']} rows in {report['soft_targets']['path']})",
        f"data: {sizes['source']}; train {sizes['train']}, val {sizes['val']}, held-out test {sizes['test']} sentences, {sizes['max_length']} tokens",
        f"seconds: {seconds}",
    ])  # fmt: skip


def run_transformer_distill(cfg: TransformerDistillConfig, name: str = "transformer_distill") -> dict[str, Any]:
    run = open_run(cfg, name)
    online = cfg.student.teacher_in_workers
    teacher = prepare_text_teacher(run, online)
    data = embed_sentences(run, teacher)
    student = train_student(run, data, "student", cfg.student.strategy, teacher, train_ds=data.splits["train"])
    report = {
        "data": {"source": data.source, **data.sizes(), "max_length": data.num_features},
        "teacher": teacher.describe(),
        "soft_targets": data.soft_targets,
        "teacher_in_workers": online,
        "student": student,
        "params_ratio": student["params"] / teacher.params,
        "seed": cfg.seed,
        "config": cfg.model_dump(mode="json"),
        "seconds": run.total(),
    }
    table = transformer_table(report)
    run.report(report, "raykd transformer-distill", table, [student["curves_png"]])
    return report
