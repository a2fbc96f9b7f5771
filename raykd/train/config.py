"""What one student run needs, as a plain picklable dataclass handed to every Ray Train worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["StudentRunConfig"]


@dataclass
class StudentRunConfig:
    """One student training run.

    `strategy=None` trains on labels only (the baseline). A strategy that needs teacher features
    gets them from `teacher_factory`, run inside each worker ("online" teacher); otherwise the
    teacher's logits come from the soft-target columns joined to the inputs.
    """

    model_spec: dict[str, Any]
    num_classes: int
    strategy: str | None = "ResponseBased"
    strategy_params: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 1
    keep_best: int = 1
    early_stopping: bool = False
    min_delta: float = 0.001
    patience: int = 5
    decode: str = "renormalize"
    """How top-k soft targets become teacher logits (see `raykd.soft_targets.decode_topk`)."""
    cache_shards: bool = False
    """Keep each worker's shard in memory after the first epoch (for shards that fit)."""
    student_layers: list[str] = field(default_factory=list)
    teacher_factory: Callable[[], Any] | None = None
