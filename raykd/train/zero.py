"""DeepSpeed ZeRO for students too large for one device (Rajbhandari et al. 2020, "ZeRO").

Stage 2 shards the optimizer state and the gradients over the Ray Train workers, stage 3 the
parameters too. The engine wraps the student inside the one loop; each worker writes its own
optimizer shard into the epoch's checkpoint directory (Ray Train merges the workers' files), and
rank 0 writes the full weights, gathered from every worker, as the usual safetensors file, so
the checkpoint loads like any other student's. Shards are read back with `weights_only=True` and
an allowlist of DeepSpeed's plain state classes: no other code is unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from raykd.deepspeed_cpu import import_deepspeed

__all__ = ["wrap", "full_state_dict", "save_shard", "load_shard", "is_engine"]

_SAFE_GLOBALS = (
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.utils.tensor_fragment.fragment_address",
    "deepspeed.runtime.zero.config.ZeroStageEnum",
)


def is_engine(module: nn.Module) -> bool:
    return hasattr(module, "zero_optimization_stage") and hasattr(module, "module")


def wrap(student: nn.Module, optimizer: torch.optim.Optimizer, stage: int, batch_size: int) -> nn.Module:
    """The DeepSpeed engine around `student`, driving `optimizer` sharded at ZeRO `stage`.

    Ray Train has already joined the workers in a torch.distributed group, which DeepSpeed reuses.
    Precision stays the loop's (fp32 weights, bf16 autocast when asked), so a ZeRO student and a
    DDP student of the same config differ only in where the optimizer state lives."""
    deepspeed = import_deepspeed()

    config = {
        "train_micro_batch_size_per_gpu": batch_size,
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": stage},
        "steps_per_print": 2**31 - 1,  # the loop prints its own line per epoch
    }
    engine, *_ = deepspeed.initialize(model=student, optimizer=optimizer, config=config, dist_init_required=False)
    return engine


def full_state_dict(engine: nn.Module) -> dict[str, torch.Tensor]:
    """The whole student's weights; a collective at stage 3 (every worker must call it)."""
    if engine.zero_optimization_stage() == 3:
        import deepspeed

        params = list(engine.module.parameters())
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            return {k: v.detach().clone().cpu() for k, v in engine.module.state_dict().items()}
    return {k: v.detach().cpu() for k, v in engine.module.state_dict().items()}


def _shard(directory: str | Path, rank: int) -> Path:
    return Path(directory) / f"zero_optimizer_rank{rank}.pt"


def save_shard(engine: nn.Module, directory: str | Path, rank: int) -> None:
    torch.save(engine.optimizer.state_dict(), _shard(directory, rank))


def load_shard(engine: nn.Module, directory: str | Path, rank: int, world: int) -> None:
    """This worker's optimizer shard from a checkpoint written by as many workers. The master
    weights come from the student's restored weights (fp32), so only this rank's shard is read."""
    import importlib

    path = _shard(directory, rank)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the checkpoint was written by fewer workers or without student.zero_stage")
    classes = []
    for name in _SAFE_GLOBALS:
        module, _, attr = name.rpartition(".")
        classes.append(getattr(importlib.import_module(module), attr))
    with torch.serialization.safe_globals(classes):
        state: dict[str, Any] = torch.load(path, weights_only=True)
    engine.optimizer.load_state_dict([state if r == rank else None for r in range(world)])
