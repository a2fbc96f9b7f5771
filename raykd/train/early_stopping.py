"""Early stopping on a validation score that should go up."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EarlyStopping"]


@dataclass
class EarlyStopping:
    """Stop after `patience` epochs without an improvement larger than `min_delta`."""

    min_delta: float = 0.001
    patience: int = 5
    best: float = field(default=float("-inf"), init=False)
    stale_epochs: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.min_delta < 0:
            raise ValueError(f"student.min_delta must be >= 0, got {self.min_delta}")
        if self.patience < 1:
            raise ValueError(f"student.patience must be >= 1, got {self.patience}")

    def step(self, score: float) -> bool:
        """Records this epoch's score; True means stop now."""
        if score > self.best + self.min_delta:
            self.best, self.stale_epochs = score, 0
        else:
            self.stale_epochs += 1
        return self.stale_epochs >= self.patience

    def state_dict(self) -> dict[str, float]:
        """What a checkpoint keeps, so a resumed run keeps its patience count."""
        return {"best": self.best, "stale_epochs": self.stale_epochs}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.best, self.stale_epochs = float(state["best"]), int(state["stale_epochs"])
