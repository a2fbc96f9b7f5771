"""What the workers of one student run receive: the user's student section plus resolved values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from raykd.config import StudentConfig
from raykd.schedules import Schedule

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
    schedules: dict[str, Schedule] = field(default_factory=dict)
    """`lr` and strategy parameters set from their schedules at every step."""
    steps_per_epoch: int = 1
    """Batches per worker per epoch, for schedules counted in steps."""
    teaching: str | None = None
    """An in-loop teacher kind (`raykd.train.teaching.in_loop_kind`): Adaptive, Curriculum, Online, EMA."""
    teaching_params: dict[str, Any] = field(default_factory=dict)
    """The teacher's params as resolved by the run (e.g. Adaptive's num_samples)."""
    task: Literal["classify", "embed"] = "classify"
    """classify: labels, scored by accuracy. embed: no labels; the student's output is a sentence
    embedding, scored by its cosine to the teacher's stored one (the batches' `features` column)."""
    pad_token_id: int | None = None
    """Inputs `x` are token ids padded with this id: strategies get the attention mask rebuilt from them."""

    @property
    def score_metric(self) -> str:
        """The validation metric (higher is better) that picks the best checkpoints."""
        return "val_cosine" if self.task == "embed" else "val_accuracy"
