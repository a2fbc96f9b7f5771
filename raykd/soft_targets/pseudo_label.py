"""Pseudo-labels: an ensemble's prediction per unlabeled sample, its confidence, and a selection.

`PseudoLabelEncoder` is a `PartEncoder`, so labeling runs through `generate_parts`: the same
teacher actor pool, atomic content-named parts, resume and refusal to mix teachers as soft
targets. A part holds, per id:

- `pseudo_label` (int64): argmax of the combined (ensemble) logits.
- `confidence` (float32): the largest softmax probability of the combined logits.
- `entropy` (float32): entropy of softmax(combined logits), in nats (0 .. log C).
- `disagreement` (float32): fraction of members whose own argmax differs from `pseudo_label`
  (0 when all agree; 0 for a single teacher).
- `member_kl` (float32): mean over members k of KL(p_ensemble ‖ p_k) in nats, how badly the
  average member explains the ensemble's distribution. This direction stays finite for every
  combine mode (a member's softmax is never 0, while `vote` gives unvoted classes p = 0).

Which rows to trust is decided afterwards by `select_pseudo_labels` (a pure function over the
labels and confidences), so a new threshold or quota re-selects without re-running teachers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from raykd.soft_targets.schema import METADATA_KEY
from raykd.soft_targets.store import read_identity, read_parts
from raykd.teachers.base import Teacher

__all__ = [
    "PSEUDO_LABEL_COLUMNS",
    "PSEUDO_LABEL_FORMAT",
    "PseudoLabelEncoder",
    "pseudo_label_stats",
    "read_pseudo_labels",
    "select_pseudo_labels",
    "with_accepted",
]

PSEUDO_LABEL_FORMAT = "pseudo_labels"
PSEUDO_LABEL_COLUMNS = ("id", "pseudo_label", "confidence", "entropy", "disagreement", "member_kl")


def pseudo_label_stats(member_logits: torch.Tensor, combined_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample statistics from (K, B, C) member logits and the (B, C) logits they combine to."""
    log_p = torch.log_softmax(combined_logits.float(), dim=-1)  # (B, C); -inf where p = 0 (vote)
    p = log_p.exp()
    confidence, label = p.max(dim=-1)
    entropy = -torch.special.xlogy(p, p).sum(-1)
    member_log_q = torch.log_softmax(member_logits.float(), dim=-1)  # (K, B, C), finite
    disagreement = (member_log_q.argmax(-1) != label).float().mean(0)
    # KL(p ‖ q_k) = Σ p log p - Σ p log q_k; xlogy makes 0·log 0 = 0 for classes with p = 0.
    member_kl = (-entropy - (p * member_log_q).sum(-1)).mean(0).clamp_min(0)
    return {"pseudo_label": label, "confidence": confidence, "entropy": entropy, "disagreement": disagreement, "member_kl": member_kl}


class PseudoLabelEncoder:
    """Writes the columns in this module's docstring for each batch (see `generate_parts`).

    An `EnsembleTeacher` runs its members once (`member_logits`) and combines them with its own
    combine mode; any other teacher counts as one member. Input columns other than `id` and `x`
    that `generate_parts(columns=...)` passes (an image `path`, say) are copied through.
    """

    def __init__(self, teacher_hash: str, num_classes: int, teacher: dict[str, Any] | None = None) -> None:
        self.metadata = {"format": PSEUDO_LABEL_FORMAT, "format_version": "1", "teacher_hash": teacher_hash, "num_classes": int(num_classes)}
        self.teacher = teacher or {}

    def __call__(self, batch: dict[str, np.ndarray], x: torch.Tensor, teacher: Teacher) -> pa.Table:
        if teacher.num_classes != self.metadata["num_classes"]:
            raise ValueError(
                f"teacher predicts {teacher.num_classes} classes but the pseudo-label metadata says "
                f"{self.metadata['num_classes']}; the teacher and the data disagree on the label set"
            )
        teacher.eval()
        with torch.inference_mode():
            if hasattr(teacher, "member_logits") and hasattr(teacher, "combine_logits"):
                members = teacher.member_logits(x)  # (K, B, C)
                combined = teacher.combine_logits(members)  # (B, C)
            else:
                combined = teacher.predict(x).logits.float()
                members = combined.unsqueeze(0)
            stats = pseudo_label_stats(members, combined)
        columns: dict[str, pa.Array] = {"id": pa.array(np.asarray(batch["id"], dtype=np.int64))}
        columns["pseudo_label"] = pa.array(stats["pseudo_label"].cpu().numpy().astype(np.int64))
        for name in PSEUDO_LABEL_COLUMNS[2:]:
            columns[name] = pa.array(stats[name].cpu().numpy().astype(np.float32))
        for name, values in batch.items():
            if name not in ("id", "x") and name not in columns:
                columns[name] = pa.array(values.tolist() if values.dtype == object else values)
        meta = json.dumps({**self.metadata, "teacher": self.teacher}, sort_keys=True).encode()
        return pa.table(columns).replace_schema_metadata({METADATA_KEY: meta})


def read_pseudo_labels(directory: str | Path) -> pa.Table:
    """Every part of a pseudo-label directory as one table, sorted by id."""
    identity = read_identity(directory)
    if identity is None:
        raise FileNotFoundError(f"{directory} holds no pseudo-label parts; run the labeling stage first")
    if identity.get("format") != PSEUDO_LABEL_FORMAT:
        raise ValueError(f"{directory} holds {identity.get('format', 'soft-target')!r} parts, not {PSEUDO_LABEL_FORMAT!r}")
    return read_parts(directory).sort_by("id")


def select_pseudo_labels(
    labels: np.ndarray,
    confidence: np.ndarray,
    *,
    threshold: float | None = None,
    per_class: int | None = None,
    ids: np.ndarray | None = None,
) -> np.ndarray:
    """Which pseudo-labels to accept (a boolean mask).

    - `threshold`: accept rows with `confidence >= threshold`.
    - `per_class`: class-balanced selection, the `per_class` most confident rows of each predicted
      class (all of them for a class with fewer candidates). Ties in confidence go to the smaller
      id (the earlier row when `ids` is None), so the result does not depend on row order.
    - Both: the quota applies among the rows that pass the threshold. Neither: accept all.
    """
    labels, confidence = np.asarray(labels), np.asarray(confidence)
    if labels.shape != confidence.shape or labels.ndim != 1:
        raise ValueError(f"labels and confidence must be 1-D of one length, got {labels.shape} and {confidence.shape}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class quota must be >= 1, got {per_class}")
    accepted = np.ones(len(labels), dtype=bool) if threshold is None else confidence >= threshold
    if per_class is None:
        return accepted
    ids = np.arange(len(labels)) if ids is None else np.asarray(ids)
    candidates = np.flatnonzero(accepted)
    # Sorted by class, then confidence (high first), then id (low first).
    order = candidates[np.lexsort((ids[candidates], -confidence[candidates], labels[candidates]))]
    sorted_labels = labels[order]
    starts = np.r_[0, np.flatnonzero(sorted_labels[1:] != sorted_labels[:-1]) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    out = np.zeros(len(labels), dtype=bool)
    out[order[rank < per_class]] = True
    return out


def with_accepted(table: pa.Table, *, threshold: float | None = None, per_class: int | None = None) -> pa.Table:
    """`table` (pseudo-label columns) with a boolean `accepted` column from `select_pseudo_labels`."""
    mask = select_pseudo_labels(
        table.column("pseudo_label").to_numpy(),
        table.column("confidence").to_numpy(),
        threshold=threshold,
        per_class=per_class,
        ids=table.column("id").to_numpy(),
    )
    if "accepted" in table.column_names:
        table = table.drop_columns(["accepted"])
    return table.append_column("accepted", pa.array(mask))
