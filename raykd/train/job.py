"""What the workers of one student run receive: the user's student section plus resolved values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raykd.config import StudentConfig

__all__ = ["StudentJob"]


@dataclass(frozen=True)
class StudentJob:
    """One student run. Every default lives in `StudentConfig`; the rest is resolved from the data.

    `strategy=None` trains on labels only (the baseline). A strategy that needs teacher features
    runs the teacher built from `teacher_config` inside each worker; otherwise the teacher's logits
    come from the soft-target columns joined to the inputs.
    """

    config: StudentConfig
    model_spec: dict[str, Any]
    num_classes: int
    strategy: str | None
    strategy_params: dict[str, Any]
    ce_weight: float
    """Weight of the cross-entropy term added to the strategy's loss (1.0 for the baseline)."""
    seed: int
    decode: str = "renormalize"
    cache_shards: bool = False
    input_stats: tuple[list[float], list[float]] | None = None
    """(mean, std) of the train split's features, written into the model's standardize buffers."""
    student_layers: tuple[str, ...] = ()
    teacher_config: dict[str, Any] | None = None
