"""The main job once per seed, each run's headline figures as one row (shared by the seed benchmarks)."""

from __future__ import annotations

from pathlib import Path

from raykd.config import load_config
from raykd.stages import run_distill


def seed_rows(flags: list[str], seeds: list[int], work: Path) -> list[dict]:
    """`run_distill` with `flags` and `--seed s` for each s (teachers, soft targets, KD and
    labels-only students all re-made), outputs under `work/seed<s>`."""
    rows = []
    for seed in seeds:
        report = run_distill(load_config([*flags, "--seed", str(seed), "--output", str(work / f"seed{seed}")]))
        rows.append(
            {
                "seed": seed,
                "teacher": report["teacher"]["accuracy"],
                "kd": report["student"]["kd"]["accuracy"],
                "baseline": report["student"]["baseline"]["accuracy"],
                "teacher_params": report["teacher"]["params"],
                "student_params": report["student"]["kd"]["params"],
                "teacher_seconds": report["seconds"]["teachers"],
                "seconds": report["seconds"]["total"],
                "test_rows": report["data"]["test"],
            }
        )
    return rows
