"""The stages every entry point calls (pipelines, the `raykd` command, benchmarks, notebooks, tests):
data → teachers → soft targets → student → report, and the runs composed of them."""

from raykd.stages.data import Data, check_data, load_data, model_spec
from raykd.stages.distill import run_distill, run_soft_targets, uses_stored_targets
from raykd.stages.run import Run, RunError, open_run, say
from raykd.stages.soft_targets import SoftTargets, make_soft_targets
from raykd.stages.student import default_teacher_layers, strategy_arguments, train_student
from raykd.stages.teachers import TeacherStage, prepare_teacher

__all__ = [
    "Data",
    "Run",
    "RunError",
    "SoftTargets",
    "TeacherStage",
    "check_data",
    "default_teacher_layers",
    "load_data",
    "make_soft_targets",
    "model_spec",
    "open_run",
    "prepare_teacher",
    "run_distill",
    "run_soft_targets",
    "say",
    "strategy_arguments",
    "train_student",
    "uses_stored_targets",
]
