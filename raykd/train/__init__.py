"""Students on Ray Train: run config, per-worker loop, checkpoints, early stopping."""

from raykd.train.checkpoint import load_student, save_student
from raykd.train.config import StudentRunConfig
from raykd.train.early_stopping import EarlyStopping
from raykd.train.loop import evaluate, student_loss, train_student_loop
from raykd.train.trainer import StudentFit, fit_student

__all__ = [
    "EarlyStopping",
    "StudentFit",
    "StudentRunConfig",
    "evaluate",
    "fit_student",
    "load_student",
    "save_student",
    "student_loss",
    "train_student_loop",
]
