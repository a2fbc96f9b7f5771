"""Temperature schedules for ResponseBased on the embedded digits: constant vs progressive vs cosine.

The data, the teacher ensemble and its soft targets are made once by the shared stages (the
teacher runs once); each schedule then trains the same student through the student stage (Ray
Train), over 3 seeds. Writes benchmarks/results/schedules.md and ends with one JSON line.

    python benchmarks/schedules.py [--seeds 3] [--epochs 40]
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

from raykd.config import RunConfig  # noqa: E402
from raykd.schedules import PROGRESSIVE_DISTILLATION  # noqa: E402
from raykd.stages import Run, run_soft_targets, train_student  # noqa: E402

SCHEDULES = {
    "constant T=4, alpha=0.9": {},
    "progressive T 10→1, alpha 0.5→1 (5 stages)": PROGRESSIVE_DISTILLATION,
    "cosine T 8→1": {"temperature": {"kind": "cosine", "start": 8.0, "end": 1.0}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="raykd-bench-schedules-"))
    base = RunConfig.model_validate({"output": str(work), "student": {"epochs": args.epochs, "baseline": False}}).check()
    run, data, teacher, soft = run_soft_targets(base, "schedules")
    rows = []
    for label, schedules in SCHEDULES.items():
        cfg = RunConfig.model_validate({**base.model_dump(), "student": {**base.student.model_dump(), "schedules": schedules}}).check()
        accs = [
            train_student(Run(cfg.model_copy(update={"seed": seed}), run.out), data, f"{len(rows)}-seed{seed}", cfg.student.strategy, teacher, soft)["accuracy"]
            for seed in range(args.seeds)
        ]
        rows.append({"schedule": label, "mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "accuracies": accs})
        print(f"{label:<45} {100 * rows[-1]['mean']:.2f} ± {100 * rows[-1]['std']:.2f}", flush=True)

    table = ["| temperature / alpha schedule | student test accuracy (mean ± std) |", "|---|---|"]
    table += [f"| {r['schedule']} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} |" for r in rows]
    text = (
        "# Temperature schedules (ResponseBased, digits)\n\n"
        f"Teacher ensemble {100 * teacher.accuracy:.2f}% ({teacher.params:,} params); student MLP [256], "
        f"{args.epochs} epochs, seeds 0..{args.seeds - 1}, 2 Ray Train workers, top-10 soft targets made once; "
        f"test split n={len(data.test['id'])}; {platform.machine()} CPU, 2 cores.\n\n" + "\n".join(table) + "\n"
    )
    out = ROOT / "benchmarks" / "results" / "schedules.md"
    out.write_text(text)
    print(text)
    print(json.dumps({"benchmark": "schedules", "epochs": args.epochs, "seeds": args.seeds, "teacher_accuracy": teacher.accuracy, "rows": rows}))


if __name__ == "__main__":
    main()
