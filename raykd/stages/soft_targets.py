"""Stage 3, soft targets: the train split streamed through a teacher actor pool into Parquet."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raykd.soft_targets import (
    SoftTargetMeta,
    SoftTargetRun,
    generate_soft_targets,
    join_with_inputs,
    read_soft_targets,
    stored_bytes,
    teacher_fingerprint,
)
from raykd.stages.data import Data
from raykd.stages.run import Run
from raykd.stages.teachers import TeacherStage
from raykd.teachers import build_from_config

__all__ = ["SoftTargets", "make_soft_targets"]


@dataclass
class SoftTargets:
    run: SoftTargetRun
    k: int
    train: Any
    """The train split joined with its soft targets by id (a Ray Dataset)."""

    def describe(self) -> dict[str, Any]:
        size = stored_bytes(self.run.path)
        return {
            "path": self.run.path,
            "rows": self.run.rows,
            "new_rows": self.run.new_rows,
            "k": self.k,
            "parts": self.run.parts,
            "bytes_per_sample": size / max(1, self.run.rows),
        }


def make_soft_targets(run: Run, data: Data, teacher: TeacherStage, out: str | Path | None = None, name: str = "soft_targets") -> SoftTargets:
    """The teacher's top-k targets for the train split in `out` (default `<run>/soft_targets`)."""
    cfg = run.cfg.soft_targets
    k = cfg.k or data.num_classes
    with run.stage(name, f"top-{k} of {teacher.label}, {cfg.pool_size} actor(s)") as summary:
        built = build_from_config(teacher.config)
        meta = SoftTargetMeta(teacher=built.describe(), teacher_hash=teacher_fingerprint(built), num_classes=data.num_classes, k=k)
        result = generate_soft_targets(
            data.splits["train"],
            functools.partial(build_from_config, teacher.config),
            out or run.at("soft_targets"),
            meta,
            batch_size=cfg.batch_size,
            pool_size=cfg.pool_size,
            num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus,
            requirements=built.requirements(),
        )
        soft_ds, _ = read_soft_targets(result.path)
        joined = join_with_inputs(data.splits["train"], soft_ds, expected_rows=len(data.train["id"]))
        summary.update({"rows": result.rows, "new_rows": result.new_rows, "parts": result.parts})
    return SoftTargets(result, k, joined)
