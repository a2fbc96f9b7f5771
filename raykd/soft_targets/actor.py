"""The teacher actor: one replica of a teacher in a Ray Data actor pool.

It builds the teacher once in `__init__`; for each batch it runs the encoder (teacher forward and
reduction, on the teacher's device) and writes the part file itself, so full teacher outputs
never cross the object store: only a one-row summary per batch does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from raykd.soft_targets.encoders import PartEncoder
from raykd.soft_targets.store import write_part
from raykd.teachers.base import Teacher

__all__ = ["TeacherActor", "pick_device"]


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TeacherActor:
    def __init__(self, teacher_factory: Callable[[], Teacher], encoder: PartEncoder, out_dir: str, device: str = "auto") -> None:
        self.device = pick_device(device)
        self.teacher = teacher_factory().to(self.device).eval()
        self.encoder = encoder
        self.out_dir = Path(out_dir)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = torch.as_tensor(batch["x"]).to(self.device, non_blocking=True)
        part = write_part(self.encoder(batch, x, self.teacher), self.out_dir)
        return {"part": np.array([part.name]), "rows": np.array([len(batch["id"])], dtype=np.int64)}
