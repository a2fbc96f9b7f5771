"""Running a student with Ray Train's `TorchTrainer`, watching it, and reading back its best checkpoint."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from raykd import storage
from raykd.train.curves import plot_curves
from raykd.train.job import StudentJob
from raykd.train.loop import train_student_loop
from raykd.train.metrics import EpochPrinter, MetricsLog, read_metrics
from raykd.train.session import TrialSession
from raykd.train.tracking import WandbRun

__all__ = ["StudentFit", "fit_student"]


@dataclass(frozen=True)
class StudentFit:
    best_checkpoint: str
    best_val_accuracy: float
    """NaN for an embedding student, which is scored by `best_score` (val_cosine) alone."""
    best_score: float
    """The best checkpoint's `job.score_metric`: val_accuracy, or val_cosine for embeddings."""
    epochs: int
    """Epochs trained (fewer than configured when early stopping ended the run)."""
    last_metrics: dict[str, Any]
    metrics_csv: str
    curves_png: str
    seconds: float


def check_resumable(directory: str | Path, job: StudentJob) -> bool:
    """True when `directory` (a path or URI) holds checkpoints of this same student (Ray Train will
    resume from them); a clear error when they come from another run's config, which could not load."""
    import json

    states = storage.glob(directory, "checkpoint_*/state.json")
    if not states:
        return False
    state = json.loads(storage.read_bytes(states[-1]))
    mine = {"spec": job.model_spec, "strategy": job.strategy}
    theirs = {"spec": state.get("spec"), "strategy": state.get("strategy")}
    if mine != theirs:
        raise ValueError(
            f"{directory} holds checkpoints of another student ({theirs}) than this run's ({mine}); Ray Train would "
            "resume from them: give this run a new --output, or delete that directory to start over"
        )
    return True


def fit_student(
    job: StudentJob,
    train_ds,
    val_ds,
    *,
    name: str,
    storage_path: str | Path,
    run_dir: str | Path,
    emit: Callable[[str], None] = print,
    tracker: WandbRun | None = None,
    in_tune: Literal["callback", "trial"] | None = None,
) -> StudentFit:
    """Trains on `job.config.num_workers` DDP workers (train split across them, val whole to each).

    Writes `<run_dir>/metrics.csv` (one row per epoch) and `<run_dir>/curves.png`, prints one
    line per epoch through `emit` while the workers train, and logs each row to `tracker`.
    In a Ray Tune trial (`in_tune`), every epoch reaches Tune too: "callback" from Ray Train's
    workers through Train's bridge (metrics only); "trial" runs the loop in the trial's own process
    on one worker and reports each checkpoint to Tune, so a scheduler can clone it (PBT).
    """
    cfg = job.config
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics_csv = run_dir / "metrics.csv"
    start = time.perf_counter()
    with tracker or contextlib.nullcontext(), EpochPrinter(metrics_csv, name, cfg.epochs, emit, on_row=tracker.log if tracker else None):
        if in_tune == "trial":
            best_dir = run_dir / "best_checkpoint"  # in the trial's own directory (published with it)
            session = TrialSession({"train": train_ds, "val": val_ds}, metrics_csv, best_dir, job.score_metric, cfg.use_gpu)
            train_student_loop({"job": job, "session": session})
            best, best_metrics = str(best_dir), json.loads((best_dir / "state.json").read_text())
        else:
            best, best_metrics = _fit_on_ray_train(job, train_ds, val_ds, name, str(storage_path), metrics_csv, in_tune == "callback")
    rows = read_metrics(metrics_csv)
    curves = plot_curves(metrics_csv, run_dir / "curves.png", f"{name}: {job.strategy or 'labels only'}")
    return StudentFit(
        best_checkpoint=best,
        best_val_accuracy=float(best_metrics.get("val_accuracy", "nan")),
        best_score=float(best_metrics[job.score_metric]),
        epochs=len(rows),
        last_metrics=rows[-1] if rows else {},
        metrics_csv=str(metrics_csv),
        curves_png=str(curves),
        seconds=time.perf_counter() - start,
    )


def _fit_on_ray_train(
    job: StudentJob, train_ds, val_ds, name: str, storage_path: str, metrics_csv: Path, to_tune: bool
) -> tuple[str, dict[str, Any]]:
    """The student on Ray Train's workers; its best checkpoint's location and metrics."""
    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    cfg = job.config
    filesystem, root = storage.resolve(storage_path)
    # Ray Train resumes a run whose storage already holds checkpoints (a rerun after a killed
    # driver): only then are the earlier epochs' rows still valid.
    if not check_resumable(storage.join(storage_path, name), job):
        metrics_csv.unlink(missing_ok=True)
    trainer = TorchTrainer(
        train_student_loop,
        train_loop_config={"job": job},
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.num_workers,
            use_gpu=cfg.use_gpu,
            resources_per_worker={"CPU": cfg.cpus_per_worker, **({"GPU": 1} if cfg.use_gpu else {})},
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=root,
            storage_filesystem=filesystem,
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=cfg.keep_best, checkpoint_score_attribute=job.score_metric, checkpoint_score_order="max"
            ),
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            # Inside a Tune trial its scheduler sees every epoch (Train V2's bridge to Tune).
            callbacks=[MetricsLog(metrics_csv), *([TuneReportCallback()] if to_tune else [])],
            # Ray Train's INFO lines (worker group start, every checkpoint and report) drown the
            # per-epoch lines; warnings and errors still show.
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
        ),
        datasets={"train": train_ds, "val": val_ds},
        dataset_config=ray.train.DataConfig(datasets_to_split=["train"]),
    )
    result = trainer.fit()
    best, best_metrics = max(result.best_checkpoints, key=lambda pair: pair[1][job.score_metric])
    return storage.location_in(storage_path, best.path), best_metrics
