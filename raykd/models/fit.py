"""Plain supervised training and evaluation on in-memory tensors (teachers, tests, baselines)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from raykd.outputs import as_model_output

__all__ = ["fit_classifier", "predict_logits", "accuracy"]


def fit_classifier(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> nn.Module:
    """Adam + cross-entropy with a seeded shuffle; returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    # Copies: arrays from Ray's object store are read-only views.
    xs, ys = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xs), generator=generator)
        for start in range(0, len(xs), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(as_model_output(model(xs[idx])).logits, ys[idx]).backward()
            optimizer.step()
    return model.eval()


@torch.inference_mode()
def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> torch.Tensor:
    model.eval()
    xs = torch.as_tensor(x, dtype=torch.float32)
    return torch.cat([as_model_output(model(xs[i : i + batch_size])).logits for i in range(0, len(xs), batch_size)])


def accuracy(logits: torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    return float((logits.argmax(-1) == torch.as_tensor(y)).float().mean())
