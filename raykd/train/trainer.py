"""Running a student with Ray Train's `TorchTrainer` and reading back its best checkpoint."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raykd.train.config import StudentRunConfig
from raykd.train.loop import train_student_loop

__all__ = ["StudentFit", "fit_student"]


@dataclass(frozen=True)
class StudentFit:
    best_checkpoint: str
    best_val_accuracy: float
    last_metrics: dict[str, Any]
    seconds: float


def fit_student(
    run: StudentRunConfig,
    train_ds,
    val_ds,
    *,
    name: str,
    storage_path: str | Path,
    num_workers: int = 2,
    use_gpu: bool = False,
    cpus_per_worker: float = 0.5,
    max_failures: int = 0,
) -> StudentFit:
    """Trains on `num_workers` DDP workers; train is split across workers, val is given whole to each."""
    import ray.train
    from ray.train.torch import TorchTrainer

    if num_workers < 1:
        raise ValueError(f"student.num_workers must be >= 1, got {num_workers}")
    start = time.perf_counter()
    trainer = TorchTrainer(
        train_student_loop,
        train_loop_config={"run": run},
        scaling_config=ray.train.ScalingConfig(
            num_workers=num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=str(Path(storage_path).resolve()),
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=run.keep_best, checkpoint_score_attribute="val_accuracy", checkpoint_score_order="max"
            ),
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
        ),
        datasets={"train": train_ds, "val": val_ds},
        dataset_config=ray.train.DataConfig(datasets_to_split=["train"]),
    )
    result = trainer.fit()
    best, best_metrics = max(result.best_checkpoints, key=lambda pair: pair[1]["val_accuracy"])
    return StudentFit(best.path, float(best_metrics["val_accuracy"]), dict(result.metrics or {}), time.perf_counter() - start)
