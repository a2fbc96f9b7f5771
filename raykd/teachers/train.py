"""Training an ensemble's members in parallel, one Ray task each, with the one small fit helper."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from raykd.models import build_model, set_input_stats
from raykd.models.fit import fit_classifier
from raykd.teachers.checkpoint import MemberCheckpoint

__all__ = ["train_members"]


def _build(spec: dict[str, Any], input_stats: tuple[Any, Any] | None) -> torch.nn.Module:
    model = build_model(spec)
    if input_stats is not None and spec.get("standardize"):
        set_input_stats(model, *input_stats)
    return model


def _train_one(
    spec: dict[str, Any], x: np.ndarray, y: np.ndarray, fit: dict[str, Any], input_stats: tuple[Any, Any] | None, seed: int, threads: int
) -> dict[str, np.ndarray]:
    torch.set_num_threads(threads)  # tasks share few cores: as many threads as CPUs reserved, to avoid oversubscription
    torch.manual_seed(seed)
    model = fit_classifier(_build(spec, input_stats), x, y, seed=seed, **fit)
    return {k: v.numpy() for k, v in model.state_dict().items()}


def train_members(
    specs: Sequence[dict[str, Any]],
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
    input_stats: tuple[Any, Any] | None = None,
    num_cpus: float = 0.5,
    options: dict[str, Any] | None = None,
) -> list[MemberCheckpoint]:
    """Trains member i with seed `seed + i` as a Ray task and returns the trained modules.

    `input_stats` (mean, std) go into the buffers of members whose spec standardizes its inputs;
    `options` are `fit_classifier`'s keyword-only ones (optimizer, schedule, progress lines).
    """
    import ray

    task = ray.remote(num_cpus=num_cpus)(_train_one)
    x_ref, y_ref = ray.put(x), ray.put(y)
    fit = {"epochs": epochs, "lr": lr, "weight_decay": weight_decay, "batch_size": batch_size, **(options or {})}
    threads = max(1, int(num_cpus))
    futures = [task.remote(spec, x_ref, y_ref, fit, input_stats, seed + i, threads) for i, spec in enumerate(specs)]
    members = []
    for i, (spec, state) in enumerate(zip(specs, ray.get(futures))):
        model = build_model(spec)
        model.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
        members.append(MemberCheckpoint(name=f"member{i}", spec=dict(spec), model=model.eval()))
    return members
