"""The main job over several seeds: does the distilled student beat the labels-only one?

Runs the main job (`raykd.stages.run_distill`, what `raykd run` and pipelines/ensemble_to_student.py
call) once per seed (teachers, soft targets, KD student and labels-only student all re-made with
that seed) in one Ray session, prints a table with the
mean test accuracies, writes benchmarks/results/kd_vs_baseline.md and ends with one JSON line.

    python benchmarks/kd_vs_baseline.py [--seeds 0 1 2] [extra pipeline flags ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.seed_runs import seed_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args, pipeline_flags = parser.parse_known_args()
    work = Path(tempfile.mkdtemp(prefix="raykd-kd-vs-baseline-"))
    rows = seed_rows(pipeline_flags, args.seeds, work)
    mean = {k: statistics.mean(r[k] for r in rows) for k in ("teacher", "kd", "baseline", "seconds")}
    table = ["| seed | ensemble | KD student | labels-only student | seconds |", "|---|---|---|---|---|"]
    table += [f"| {r['seed']} | {100 * r['teacher']:.2f}% | {100 * r['kd']:.2f}% | {100 * r['baseline']:.2f}% | {r['seconds']:.0f} |" for r in rows]
    table.append(f"| mean | {100 * mean['teacher']:.2f}% | {100 * mean['kd']:.2f}% | {100 * mean['baseline']:.2f}% | {mean['seconds']:.0f} |")
    text = (
        "# KD student vs labels-only student (main job, digits test split)\n\n"
        f"Student {rows[0]['student_params']:,} params, ensemble {rows[0]['teacher_params']:,} params; "
        f"pipeline flags {pipeline_flags or 'defaults'}; {platform.machine()} CPU, 2 cores.\n\n" + "\n".join(table) + "\n\n"
        f"KD minus labels-only, mean over seeds: {100 * (mean['kd'] - mean['baseline']):+.2f} points.\n"
    )
    out = ROOT / "benchmarks" / "results" / "kd_vs_baseline.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(json.dumps({"benchmark": "kd_vs_baseline", "rows": rows, "mean": mean, "kd_minus_baseline": mean["kd"] - mean["baseline"]}))


if __name__ == "__main__":
    main()
