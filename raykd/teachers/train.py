"""Training an ensemble's members in parallel, one Ray task each."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from raykd.models import build_model
from raykd.models.fit import fit_classifier
from raykd.teachers.checkpoint import MemberCheckpoint, load_members, save_members

__all__ = ["train_members", "train_or_load_members"]


def _train_one(spec: dict[str, Any], x: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int) -> dict[str, np.ndarray]:
    torch.set_num_threads(1)  # tasks share few cores; one thread each avoids oversubscription
    torch.manual_seed(seed)
    model = fit_classifier(build_model(spec), x, y, epochs=epochs, lr=lr, seed=seed)
    return {k: v.numpy() for k, v in model.state_dict().items()}


def train_members(
    specs: Sequence[dict[str, Any]], x: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int, num_cpus: float = 0.5
) -> list[MemberCheckpoint]:
    """Trains member i with seed `seed + i` as a Ray task and returns the trained modules."""
    import ray

    task = ray.remote(num_cpus=num_cpus)(_train_one)
    x_ref, y_ref = ray.put(x), ray.put(y)
    futures = [task.remote(spec, x_ref, y_ref, epochs, lr, seed + i) for i, spec in enumerate(specs)]
    members = []
    for i, (spec, state) in enumerate(zip(specs, ray.get(futures))):
        model = build_model(spec)
        model.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
        members.append(MemberCheckpoint(name=f"member{i}", spec=dict(spec), model=model.eval()))
    return members


def train_or_load_members(
    out_dir: str | Path,
    checkpoint: str | None,
    architectures: Sequence[dict[str, Any]],
    num_features: int,
    num_classes: int,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    lr: float,
    seed: int,
) -> list[MemberCheckpoint]:
    """The members of `checkpoint`, or new ones trained from `architectures` (specs without
    sizes); either way saved to `out_dir` as the run's teacher checkpoint."""
    if checkpoint:
        members, _ = load_members(checkpoint)
    else:
        specs = [{**a, "in_features": num_features, "num_classes": num_classes} for a in architectures]
        members = train_members(specs, x, y, epochs, lr, seed)
    save_members(out_dir, members)
    return members
