"""Reference architectures, built from a plain JSON-able spec so checkpoints stay weights-only."""

from __future__ import annotations

from typing import Any

from torch import nn

from raykd.models.mlp import MLP

__all__ = ["MLP", "build_model", "count_parameters"]


def build_model(spec: dict[str, Any]) -> nn.Module:
    """`{"type": "mlp", "in_features": 64, "hidden": [256], "num_classes": 10, "dropout": 0.1}`."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind == "mlp":
        return MLP(**spec)
    raise ValueError(f"model spec type must be 'mlp', got {kind!r}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

