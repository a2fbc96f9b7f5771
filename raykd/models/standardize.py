"""Input standardization that travels with the weights.

Features on very different scales (a tabular column in the thousands next to one below 1) stall
plain SGD. Standardizing in the data pipeline would make every consumer — teacher inference, soft
targets, the student, a user's own inference — repeat the same statistics by hand; storing the
mean and std as module buffers puts them in the state_dict, so every safetensors checkpoint
carries them and raw features in means the same standardization everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["MIN_STD", "feature_stats", "set_input_stats", "standardized"]

# A column whose std is below this is treated as constant and passed through unscaled
# (e.g. the digits' always-zero corner pixels): dividing by ~0 would blow up unseen values.
MIN_STD = 1e-6


def register_input_stats(module: nn.Module, in_features: int) -> None:
    """Identity statistics (mean 0, std 1) as buffers: not trained, but saved and loaded."""
    module.register_buffer("input_mean", torch.zeros(in_features))
    module.register_buffer("input_std", torch.ones(in_features))


def standardized(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`x` flattened per sample and, when `module` stores input statistics, standardized by them."""
    x = x.reshape(len(x), -1)
    return (x - module.input_mean) / module.input_std if module.standardize else x


def feature_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over the rows of `x` (N, F) as float32; std < MIN_STD becomes 1.0."""
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"feature_stats needs a non-empty (rows, features) array, got shape {x.shape}")
    flat = x.reshape(len(x), -1).astype(np.float64)  # float64 sums: float32 loses digits on large columns
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std[std < MIN_STD] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def set_input_stats(model: nn.Module, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> nn.Module:
    """Copy `mean`/`std` (from `feature_stats`) into the model's `input_mean`/`input_std` buffers."""
    if not getattr(model, "standardize", False) or not hasattr(model, "input_mean"):
        raise ValueError(
            f"{type(model).__name__} was built without input standardization; "
            'add "standardize": true to its model spec (or standardize=True) to store input statistics'
        )
    mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32)).reshape(-1)
    std_t = torch.as_tensor(np.asarray(std, dtype=np.float32)).reshape(-1)
    expected = tuple(model.input_mean.shape)
    if tuple(mean_t.shape) != expected or tuple(std_t.shape) != expected:
        raise ValueError(
            f"input statistics have shapes {tuple(mean_t.shape)} and {tuple(std_t.shape)}, but the model "
            f"takes {expected[0]} features; compute them with feature_stats on the same feature columns"
        )
    if not bool(torch.isfinite(mean_t).all()) or not bool((std_t > 0).all()):
        raise ValueError("input statistics must be finite with std > 0; compute them with feature_stats")
    with torch.no_grad():
        model.input_mean.copy_(mean_t.to(model.input_mean.device))
        model.input_std.copy_(std_t.to(model.input_std.device))
    return model
