"""Student checkpoints: safetensors weights + JSON state; optimizer state loaded weights-only.

Saved to a local directory (Ray Train uploads it to the run's storage); read from a local
directory or a URI (`raykd.storage`), as the run's report names it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save_file
from torch import nn

from raykd import storage
from raykd.models import build_model

__all__ = ["save_student", "read_checkpoint", "load_student", "load_training_state"]

WEIGHTS, STATE, OPTIMIZER, TEACHING = "model.safetensors", "state.json", "optimizer.pt", "teaching.pt"


def save_student(
    directory: str | Path,
    model: nn.Module,
    spec: dict[str, Any],
    state: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    strategy: nn.Module | None = None,
    teaching: dict[str, Any] | None = None,
    weights: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Weights (safetensors; `weights` when given, e.g. gathered from ZeRO shards, else the
    model's), state (JSON), and for resuming: the optimizer, the strategy's modules, and
    `teaching`, the state of a teacher that acts during training (tensors and numbers only)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = model.state_dict() if weights is None else weights
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(directory / WEIGHTS))
    if strategy is not None and len(strategy.state_dict()):
        save_file({k: v.detach().contiguous().cpu() for k, v in strategy.state_dict().items()}, str(directory / "strategy.safetensors"))
    if optimizer is not None:
        torch.save(optimizer.state_dict(), directory / OPTIMIZER)
    if teaching:
        torch.save(teaching, directory / TEACHING)
    (directory / STATE).write_text(json.dumps({"spec": spec, **state}, indent=2))
    return directory


def read_checkpoint(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(weights, state) of a student checkpoint directory."""
    try:
        state = json.loads(storage.read_bytes(storage.join(directory, STATE)))
        return load(storage.read_bytes(storage.join(directory, WEIGHTS))), state
    except FileNotFoundError:
        raise FileNotFoundError(f"{directory} is not a raykd student checkpoint (needs {WEIGHTS} and {STATE})") from None


def load_student(directory: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    weights, state = read_checkpoint(directory)
    model = build_model(state["spec"])
    model.load_state_dict(weights)
    return model.eval(), state


def load_training_state(directory: str | Path) -> dict[str, Any]:
    """Optimizer, strategy and teaching state for resuming; `weights_only=True` never unpickles code."""
    present = {f.base_name for f in storage.list_files(directory)}
    out: dict[str, Any] = {}
    if OPTIMIZER in present:
        out["optimizer"] = torch.load(io.BytesIO(storage.read_bytes(storage.join(directory, OPTIMIZER))), weights_only=True)
    if "strategy.safetensors" in present:
        out["strategy"] = load(storage.read_bytes(storage.join(directory, "strategy.safetensors")))
    if TEACHING in present:
        out["teaching"] = torch.load(io.BytesIO(storage.read_bytes(storage.join(directory, TEACHING))), weights_only=True)
    return out
