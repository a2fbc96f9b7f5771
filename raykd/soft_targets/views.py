"""Soft targets for V augmented views per sample, and the loader side that replays each view.

Each view is keyed by a hash of (sample_id, view) (`raykd.data.augment.view_ids`); its
augmentation parameters are stored next to its targets, and `join_views` re-applies them to the
sample's pixels, so the student trains on exactly the image the teacher labelled (see
`raykd.data.augment`). The `ViewSpec` is in every part's metadata, so a resume never mixes specs.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import torch

from raykd.data.augment import VIEW_COLUMNS, ViewSpec, apply_views, expand_views, view_ids
from raykd.shuffle import hash_join
from raykd.soft_targets.encoders import PartEncoder, TopKEncoder
from raykd.soft_targets.pipeline import SoftTargetRun, generate_parts
from raykd.soft_targets.schema import SoftTargetMeta
from raykd.soft_targets.store import shuffle_partitions
from raykd.teachers.base import Teacher

__all__ = ["ViewsEncoder", "generate_view_targets", "join_views"]


class ViewsEncoder:
    """Wraps an encoder and keeps each row's view parameters beside its outputs."""

    def __init__(self, inner: PartEncoder) -> None:
        self.inner = inner
        self.metadata = inner.metadata

    def __call__(self, batch: dict[str, np.ndarray], x: torch.Tensor, teacher: Teacher) -> pa.Table:
        table = self.inner(batch, x, teacher)
        for name in VIEW_COLUMNS:
            table = table.append_column(name, pa.array(batch[name]))
        return table


def generate_view_targets(
    inputs, teacher_factory: Callable[[], Teacher], out_dir: str | Path, meta: SoftTargetMeta, spec: ViewSpec, **pool: object
) -> SoftTargetRun:
    """Top-k targets for every view of every sample of `inputs` (`id`, `x`), exactly once."""
    views = inputs.select_columns(["id", "x"]).map_batches(expand_views, batch_format="numpy", fn_kwargs={"spec": spec})
    # The spec goes into every part's metadata: a resume checks it like the teacher and k.
    encoder = ViewsEncoder(TopKEncoder(replace(meta, views=asdict(spec))))
    return generate_parts(views, teacher_factory, encoder, out_dir, columns=("id", "x", *VIEW_COLUMNS), **pool)  # type: ignore[arg-type]


def _replay(batch: dict[str, np.ndarray], spec: ViewSpec) -> dict[str, np.ndarray]:
    batch = dict(batch)
    batch["x"] = apply_views(batch["x"], batch, spec)
    batch["sample_id"] = batch["id"]  # the join keeps the left key only
    batch["id"] = view_ids(batch["sample_id"], batch["view"])
    return batch


def join_views(inputs, soft_targets, spec: ViewSpec, expected_rows: int, num_partitions: int | None = None):
    """Inputs (`id`, `x`, `label`) joined with their views' targets, each row re-augmented with
    its stored parameters; `id` becomes the view key. Partitions grow with `expected_rows`
    (`store.shuffle_partitions`) unless given."""
    right = soft_targets.drop_columns(["id"])
    partitions = num_partitions or shuffle_partitions(expected_rows)
    joined = hash_join(inputs, right, partitions, on="id", right_on="sample_id")
    joined = joined.map_batches(_replay, batch_format="numpy", fn_kwargs={"spec": spec}).materialize()
    if joined.count() != expected_rows:
        raise ValueError(
            f"{expected_rows - joined.count()} of {expected_rows} views have no soft targets; regenerate the view targets"
        )
    return joined
