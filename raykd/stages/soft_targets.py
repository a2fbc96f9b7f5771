"""Stage 3, soft targets: the train split (or V augmented views of each image, `soft_targets.views`)
streamed through a teacher actor pool into Parquet."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raykd.config import ConfigError, RunConfig
from raykd.data import Inputs
from raykd.data.augment import VIEW_COLUMNS, ViewSpec
from raykd.data.image_parquet import ImageParquet
from raykd.data.images import ImageFolder
from raykd.soft_targets import (
    SoftTargetMeta,
    SoftTargetRun,
    generate_soft_targets,
    join_with_inputs,
    read_soft_targets,
    stored_bytes,
    teacher_fingerprint,
)
from raykd.soft_targets.views import generate_view_targets, join_views
from raykd.stages.data import Data
from raykd.stages.run import Run
from raykd.stages.teachers import TeacherStage
from raykd.teachers import build_from_config

__all__ = ["SoftTargets", "make_soft_targets", "view_spec"]


@dataclass
class SoftTargets:
    run: SoftTargetRun
    k: int
    train: Any
    """The train split joined with its soft targets by id (a Ray Dataset); with views, one row per
    view, its pixels replayed from the stored parameters and `id` the view's key."""
    views: int = 1

    def describe(self) -> dict[str, Any]:
        size = stored_bytes(self.run.path)
        return {
            "path": self.run.path,
            "views": self.views,
            "rows": self.run.rows,
            "new_rows": self.run.new_rows,
            "k": self.k,
            "parts": self.run.parts,
            "bytes_per_sample": size / max(1, self.run.rows),
        }


def view_spec(cfg: RunConfig, inputs: Any) -> ViewSpec | None:
    """`soft_targets.views` as a ViewSpec whose channels come from the inputs (3 for RGB image
    folders and image Parquet, 1 for image-shaped features such as the digits); None for one view.
    Checked before Ray starts: flat features have no pixels to shift."""
    st = cfg.soft_targets
    if st.views == 1:
        return None
    if isinstance(inputs, (ImageFolder, ImageParquet)):
        channels = 3
    elif isinstance(inputs, Inputs) and inputs.image_shape is not None:
        h, w = inputs.image_shape
        if h != w:
            raise ConfigError(f"soft_targets.views: {st.views} needs square images, data.image_shape is {h}x{w}; set soft_targets.views=1")
        channels = 1
    else:
        raise ConfigError(
            f"soft_targets.views: {st.views} shifts images, but {inputs.spec.path or 'the data'} has flat features; "
            "set data.image_shape (--image-shape HxW) if they are a flattened grayscale image, else soft_targets.views=1"
        )
    return ViewSpec(channels=channels, views=st.views, pad=st.pad, flip=st.flip, seed=cfg.seed)


def make_soft_targets(run: Run, data: Data, teacher: TeacherStage, out: str | Path | None = None, name: str = "soft_targets") -> SoftTargets:
    """The teacher's top-k targets for the train split in `out` (default `<run>/soft_targets`),
    of each image's `soft_targets.views` views when more than one."""
    cfg = run.cfg.soft_targets
    k = cfg.k or data.num_classes
    spec = view_spec(run.cfg, data.inputs)
    views = f", {spec.views} views per image (shift <= {spec.pad}px{', flip' if spec.flip else ''})" if spec else ""
    with run.stage(name, f"top-{k} of {teacher.label}, {cfg.pool_size} actor(s){views}") as summary:
        built = build_from_config(teacher.config)
        meta = SoftTargetMeta(teacher=built.describe(), teacher_hash=teacher_fingerprint(built), num_classes=data.num_classes, k=k)
        train, factory, samples = data.splits["train"], functools.partial(build_from_config, teacher.config), len(data.train["id"])
        pool = {"batch_size": cfg.batch_size, "pool_size": cfg.pool_size, "num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus, "requirements": built.requirements()}
        out = out or run.at("soft_targets")
        if spec is None:
            result = generate_soft_targets(train, factory, out, meta, **pool)
            joined = join_with_inputs(train, read_soft_targets(result.path)[0], expected_rows=samples)
        else:
            result = generate_view_targets(train, factory, out, meta, spec, **pool)
            joined = join_views(train, read_soft_targets(result.path)[0], spec, expected_rows=samples * spec.views)
            # The pixels are replayed; the student reads only id, x, label and the targets.
            joined = joined.drop_columns(list(VIEW_COLUMNS))
        summary.update({"rows": result.rows, "new_rows": result.new_rows, "parts": result.parts, "views": spec.views if spec else 1})
    return SoftTargets(result, k, joined, spec.views if spec else 1)
