"""Students on Ray Train: the job, the per-worker loop, checkpoints, early stopping, metrics."""

from raykd.train.checkpoint import load_student, save_student
from raykd.train.early_stopping import EarlyStopping
from raykd.train.job import StudentJob
from raykd.train.loop import default_ce_weight, evaluate, evaluate_embedding, needs_online_teacher, student_loss, train_student_loop
from raykd.train.trainer import StudentFit, fit_student

__all__ = [
    "EarlyStopping",
    "StudentFit",
    "StudentJob",
    "default_ce_weight",
    "evaluate",
    "evaluate_embedding",
    "fit_student",
    "load_student",
    "needs_online_teacher",
    "save_student",
    "student_loss",
    "train_student_loop",
]
