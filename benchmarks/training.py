"""Student training speed: cached soft targets vs plain supervised training vs the teacher online.

Three runs of the same student through the student stage (Ray Train, same workers, batch size and
epochs), measured side by side in one run: labels only; ResponseBased from the stored top-k soft
targets (the teacher ran once, before); ResponseBased with the teacher run inside each worker on
every batch (`student.teacher_in_workers`). Steps/s is one worker's optimizer steps per second of
its training pass (median over epochs after the first, which pays the shard's first read).
Ends with one JSON line.

    python benchmarks/training.py [--epochs 15] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raykd.config import RunConfig  # noqa: E402
from raykd.stages import Run, run_soft_targets, train_student  # noqa: E402
from raykd.train.metrics import read_metrics  # noqa: E402


def steps_per_second(result: dict, rows: int, cfg: RunConfig) -> float:
    steps = math.ceil(rows // cfg.student.num_workers / cfg.student.batch_size)
    seconds = statistics.median(r["epoch_seconds"] for r in read_metrics(result["metrics_csv"])[1:])
    return steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="raykd-bench-training-"))
    raw = {"output": str(work), "data": {"limit": args.limit}, "student": {"epochs": args.epochs, "baseline": False}, "tracking": {"wandb": False}}
    base = RunConfig.model_validate(raw).check()
    run, data, teacher, soft = run_soft_targets(base, "training")
    online = base.model_copy(update={"student": base.student.model_copy(update={"teacher_in_workers": True})})
    rows = len(data.train["id"])
    results = {
        "labels only": train_student(run, data, "labels_only", None),
        "KD, cached soft targets": train_student(run, data, "cached", base.student.strategy, teacher, soft),
        "KD, teacher in the workers": train_student(Run(online, run.out), data, "online", base.student.strategy, teacher, soft),
    }
    speed = {name: steps_per_second(r, rows, base) for name, r in results.items()}
    plain, cached, in_workers = speed.values()
    table = ["| student training | steps/s (one worker) | test accuracy |", "|---|---|---|"]
    table += [f"| {name} | {speed[name]:.1f} | {100 * r['accuracy']:.2f}% |" for name, r in results.items()]
    print(
        f"\nTeacher {teacher.label} ({teacher.params:,} params); student {results['labels only']['params']:,} params; {rows} train rows, "
        f"{base.student.num_workers} Ray Train workers, batch {base.student.batch_size}, {args.epochs} epochs; {platform.machine()} CPU\n"
    )
    print("\n".join(table))
    print(f"\ncached KD / plain supervised: {cached / plain:.2f}; teacher in the workers / cached: {in_workers / cached:.2f}")
    print(json.dumps({
        "benchmark": "training", "steps_per_s": speed, "cached_vs_plain_ratio": cached / plain,
        "online_vs_cached_ratio": in_workers / cached, "epochs": args.epochs, "train_rows": rows,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
