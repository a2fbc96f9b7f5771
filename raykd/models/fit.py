"""Plain supervised training and evaluation on in-memory tensors (teachers, tests, baselines)."""

from __future__ import annotations

import time
from typing import Callable

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
    *,
    decoupled: bool = False,
    warmup: float | None = None,
    log: Callable[[str], None] | None = None,
) -> nn.Module:
    """Adam + cross-entropy with a seeded shuffle; returns the model in eval mode.

    `decoupled`: AdamW's decoupled weight decay (Loshchilov & Hutter 2019) instead of Adam's L2
    term. `warmup`: the learning rate rises linearly over that fraction of the steps, then falls
    linearly to 0 (BERT's fine-tuning schedule, Devlin et al. 2019); None keeps it constant.
    `log` gets a line per epoch (mean loss, train accuracy) and, within an epoch, one every 30 s.
    """
    generator = torch.Generator().manual_seed(seed)
    # Copies: arrays from Ray's object store are read-only views.
    xs, ys = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.long)
    optimizer = (torch.optim.AdamW if decoupled else torch.optim.Adam)(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = -(-len(xs) // batch_size)
    total = epochs * steps_per_epoch
    schedule = None
    if warmup is not None:
        rise = max(1, round(warmup * total))
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / rise, max(0.0, (total - s) / max(1, total - rise))))
    model.train()
    start = last = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(xs), generator=generator)
        loss_sum, correct = 0.0, 0
        for step, begin in enumerate(range(0, len(xs), batch_size), start=1):
            idx = order[begin : begin + batch_size]
            optimizer.zero_grad(set_to_none=True)
            logits = as_model_output(model(xs[idx])).logits
            loss = F.cross_entropy(logits, ys[idx])
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            if log is None:
                continue
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(-1) == ys[idx]).sum())
            if time.perf_counter() - last > 30 and step < steps_per_epoch:
                last = time.perf_counter()
                log(f"epoch {epoch}/{epochs}: step {step}/{steps_per_epoch}, {last - start:.0f}s")
        if log is not None:
            last = time.perf_counter()
            log(f"epoch {epoch}/{epochs}: loss {loss_sum / len(xs):.4f}, train accuracy {100 * correct / len(xs):.2f}%, {last - start:.0f}s")
    return model.eval()


@torch.inference_mode()
def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> torch.Tensor:
    model.eval()
    xs = torch.as_tensor(x, dtype=torch.float32)
    return torch.cat([as_model_output(model(xs[i : i + batch_size])).logits for i in range(0, len(xs), batch_size)])


def accuracy(logits: torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    return float((logits.argmax(-1) == torch.as_tensor(y)).float().mean())
