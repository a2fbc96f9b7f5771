"""What a teacher actor writes for a batch: an encoder turns teacher outputs into an Arrow table.

Encoders run on the teacher's device and reduce outputs there (top-k, argmax, entropy) so only
a few numbers per sample leave a GPU. Each carries the metadata that identifies its output, so a
directory never mixes parts of different teachers or formats.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import torch

from raykd.soft_targets.codec import encode_topk
from raykd.soft_targets.schema import SoftTargetMeta, to_table
from raykd.teachers.base import Teacher

__all__ = ["PartEncoder", "TopKEncoder"]


class PartEncoder(Protocol):
    """`encoder(batch, x, teacher) -> pa.Table` with an `id` column, plus identifying metadata."""

    metadata: dict[str, Any]

    def __call__(self, batch: dict[str, np.ndarray], x: torch.Tensor, teacher: Teacher) -> pa.Table: ...


class TopKEncoder:
    """Soft targets: top-k raw logits (float16), their indices, the full logsumexp, and optionally
    the full logits (float32) and one teacher feature (float16 embedding)."""

    def __init__(self, meta: SoftTargetMeta) -> None:
        self.meta = meta
        self.metadata = meta.identity()

    def __call__(self, batch: dict[str, np.ndarray], x: torch.Tensor, teacher: Teacher) -> pa.Table:
        if teacher.num_classes != self.meta.num_classes:
            raise ValueError(
                f"teacher predicts {teacher.num_classes} classes but the soft-target metadata says "
                f"{self.meta.num_classes}; the teacher and the data disagree on the label set"
            )
        out = teacher.predict(x)
        values, indices = encode_topk(out.logits, self.meta.k)
        extras: dict[str, np.ndarray] = {"logsumexp": torch.logsumexp(out.logits.float(), dim=1).cpu().numpy()}
        if self.meta.full_logits:
            extras["logits"] = out.logits.float().cpu().numpy()
        if self.meta.feature is not None:
            extras["features"] = out.feature(self.meta.feature).flatten(1).to(torch.float16).cpu().numpy()
        return to_table(batch["id"], values, indices, self.meta, extras)
