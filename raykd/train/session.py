"""Where the student loop runs: in Ray Train's workers, or in the process of a Ray Tune trial.

The loop (`raykd.train.loop`) asks its session for its rank, device, data, resume checkpoint and
for each epoch's report. `TrainSession` answers from Ray Train (DDP workers, checkpoints kept by
Ray Train). `TrialSession` runs the same loop inside a Tune function trainable, one process, and
reports every checkpoint to Tune itself: Train V2's bridge to Tune forwards checkpoints as paths
only, so Population Based Training could not clone a trial's state through it.
"""

from __future__ import annotations

import json
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from raykd.train.metrics import MetricsTable

__all__ = ["Session", "TrainSession", "TrialSession"]


class Session(ABC):
    """What the loop needs from where it runs."""

    world_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @abstractmethod
    def dataset(self, name: str) -> Any:
        """This worker's part of dataset `name` (anything with `iter_torch_batches`)."""

    @abstractmethod
    def checkpoint(self) -> Any:
        """The checkpoint to resume from (a `ray.train.Checkpoint`), or None."""

    def prepare(self, module: nn.Module, **kwargs: Any) -> nn.Module:
        """The module on this session's device, wrapped for data parallelism where there is any."""
        return module.to(self.device)

    @abstractmethod
    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        """One epoch's metrics, with the checkpoint written in `checkpoint_dir` when one is due."""


class TrainSession(Session):
    """A Ray Train worker's session (DDP across `world_size` workers)."""

    def __init__(self) -> None:
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        self.world_rank, self.world_size = context.get_world_rank(), context.get_world_size()
        self.device = ray.train.torch.get_device()

    def dataset(self, name: str) -> Any:
        import ray.train

        return ray.train.get_dataset_shard(name)

    def checkpoint(self) -> Any:
        import ray.train

        return ray.train.get_checkpoint()

    def prepare(self, module: nn.Module, **kwargs: Any) -> nn.Module:
        import ray.train.torch

        return ray.train.torch.prepare_model(module, **({"parallel_strategy_kwargs": kwargs} if kwargs else {}))

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        import ray.train

        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None)


class TrialSession(Session):
    """The loop inside a Ray Tune trial's own process: one worker, whole datasets, every epoch's
    metrics and checkpoint reported to Tune (which schedulers such as PBT clone), the rows into
    `metrics_csv`, and the best checkpoint by `score_metric` kept as `best_dir`."""

    def __init__(self, datasets: dict[str, Any], metrics_csv: Path, best_dir: Path, score_metric: str, use_gpu: bool) -> None:
        self.datasets, self.best_dir, self.score_metric = datasets, Path(best_dir), score_metric
        self.table = MetricsTable(metrics_csv)
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
        state = self.best_dir / "state.json"
        # A trial restarted by its scheduler (PBT's exploit) keeps the best of what it trained before.
        self.best_score = json.loads(state.read_text())[score_metric] if state.is_file() else float("-inf")

    def dataset(self, name: str) -> Iterable:
        return self.datasets[name]

    def checkpoint(self) -> Any:
        from ray import tune

        return tune.get_checkpoint()

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        from ray import tune

        self.table.add(metrics)
        if checkpoint_dir and metrics[self.score_metric] > self.best_score:
            self.best_score = metrics[self.score_metric]
            staging = self.best_dir.with_name(self.best_dir.name + ".new")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(checkpoint_dir, staging)
            shutil.rmtree(self.best_dir, ignore_errors=True)
            staging.rename(self.best_dir)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None)
