"""The teacher actor: one replica of a teacher in a Ray Data actor pool.

It loads the teacher once in `__init__`, and for each batch runs it, keeps the top-k on the
teacher's device and writes the part file itself, so full logits never cross the object store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from raykd.soft_targets.codec import encode_topk
from raykd.soft_targets.schema import SoftTargetMeta, to_table
from raykd.soft_targets.store import write_part
from raykd.teachers.base import Teacher

__all__ = ["SoftTargetActor", "pick_device"]


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class SoftTargetActor:
    def __init__(self, teacher_factory: Callable[[], Teacher], out_dir: str, meta: SoftTargetMeta, device: str = "auto") -> None:
        self.device = pick_device(device)
        self.teacher = teacher_factory().to(self.device).eval()
        if self.teacher.num_classes != meta.num_classes:
            raise ValueError(
                f"teacher predicts {self.teacher.num_classes} classes but the soft-target metadata says "
                f"{meta.num_classes}; the teacher and the data disagree on the label set"
            )
        self.out_dir = Path(out_dir)
        self.meta = meta

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = torch.as_tensor(batch["x"]).to(self.device, non_blocking=True)
        logits = self.teacher.predict(x).logits
        values, indices = encode_topk(logits, self.meta.k)
        part = write_part(to_table(batch["id"], values, indices, self.meta), self.out_dir)
        return {"part": np.array([part.name]), "rows": np.array([len(batch["id"])], dtype=np.int64)}
