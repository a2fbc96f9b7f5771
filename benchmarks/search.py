"""Ray Tune searches on the embedded digits: what running the teacher once saves, and two of the
tutorial's exercises as searches.

1. Wall time of an N-trial search (`raykd tune`: teacher and soft targets once, then N students)
   against N sequential runs of the main job (`raykd run --no-baseline`), each of which trains the
   teacher members and makes the soft targets again. Same students, same epochs, measured here.
2. The tutorial's temperature sweep (T = 1, 2, 4, 8, 16; ResponseBased, alpha 0.9) and its
   "feature + logit Hybrid against each alone" (ResponseBased, FeatureBased, Hybrid), each as a
   grid search over the same soft targets.
Writes benchmarks/results/search.md and ends with one JSON line.

    python benchmarks/search.py [--trials 4] [--epochs 6] [--exercise-epochs 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raykd.config import validate  # noqa: E402
from raykd.search import SearchConfig, trial_config  # noqa: E402
from raykd.stages import run_distill  # noqa: E402
from raykd.stages.search import run_search  # noqa: E402

SPACE = {
    "strategies": ["ResponseBased", "DecoupledKD"],
    "temperature": {"kinds": ["constant", "linear"], "start": {"low": 2, "high": 8}, "end": {"low": 1, "high": 2}},
    "lr": {"low": 1.0e-3, "high": 1.0e-2, "log": True},
}
# Hybrid = Hinton KD on the logits + a FitNets hint on the CNN student's middle layer.
HYBRID = {"components": [{"name": "ResponseBased", "params": {"temperature": 4.0, "alpha": 0.9}}, {"name": "FeatureBased", "params": {"regressor": "always"}}]}
CNN = {"model": {"type": "cnn", "channels": [16, 32], "embed": 16}, "layers": ["body.conv2"]}


def _search(work: Path, name: str, student: dict, search: dict) -> tuple[SearchConfig, dict]:
    cfg = validate(SearchConfig, {"output": str(work / name), "tracking": {"wandb": False}, "student": student, "search": search})
    start = time.perf_counter()
    report = run_search(cfg, name)
    return cfg, {**report, "wall": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--exercise-epochs", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="raykd-bench-search-"))

    space, searched = _search(work, "search", {"epochs": args.epochs, "num_workers": 1}, {**SPACE, "num_samples": args.trials, "scheduler": "fifo"})
    start = time.perf_counter()
    for row in searched["rows"]:
        # The same student as the trial, as a job of its own: teacher and soft targets again.
        run_distill(trial_config(space, row["draw"]).model_copy(update={"output": str(work / f"job-{row['trial']}")}), f"job-{row['trial']}")
    jobs = time.perf_counter() - start
    ratio = jobs / searched["wall"]
    print(f"{args.trials}-trial search {searched['wall']:.1f}s vs {args.trials} main jobs {jobs:.1f}s: {ratio:.2f}x", flush=True)

    _, sweep = _search(work, "temperature_sweep", {"epochs": args.exercise_epochs},
                    {"temperature": {"start": {"values": [1, 2, 4, 8, 16]}}, "num_samples": 1, "scheduler": "fifo"})  # fmt: skip
    _, hybrid = _search(work, "hybrid_vs_alone", {"epochs": args.exercise_epochs, **CNN},
                     {"strategies": ["ResponseBased", "FeatureBased", "Hybrid"], "strategy_params": {"Hybrid": HYBRID, "FeatureBased": {"regressor": "always"}},
                      "every_strategy": True, "num_samples": 1, "scheduler": "fifo"})  # fmt: skip

    def table(rows: list[dict], first: str, key: str) -> list[str]:
        lines = [f"| {first} | val accuracy | test accuracy |", "|---|---|---|"]
        return lines + [f"| {r[key]} | {100 * r['val_accuracy']:.2f}% | {100 * r['test_accuracy']:.2f}% |" for r in rows]

    sweep_rows = sorted(sweep["rows"], key=lambda r: r["temperature_start"])
    text = "\n".join([
        "# Searches (digits)",
        "",
        f"{platform.machine()} CPU, 2 cores; one seed per trial (seed 0); test split 20 % of the 1,797 digits. Measured by `python benchmarks/search.py`.",
        "",
        f"## The teacher runs once: {args.trials}-trial search vs {args.trials} main jobs",
        "",
        f"{args.trials} trials ({', '.join(SPACE['strategies'])}, drawn temperature schedules and lr; {args.epochs} epochs, 1 Ray Train worker):",
        f"search {searched['wall']:.1f} s (teacher and soft targets {searched['teacher_seconds']:.1f} s, once) vs the same {args.trials} students "
        f"as main jobs {jobs:.1f} s (teacher and soft targets each time): **{ratio:.2f}×**.",
        "",
        f"## Temperature sweep (ResponseBased, alpha 0.9, {args.exercise_epochs} epochs)",
        "",
        *table(sweep_rows, "temperature", "temperature"),
        "",
        f"## Feature + logit Hybrid against each alone (CNN student, {args.exercise_epochs} epochs)",
        "",
        *table(hybrid["rows"], "strategy", "strategy"),
        "",
        "Born-Again over 3 generations is a run of generations, not a search: `benchmarks/born_again.py`, table in [born_again.md](born_again.md).",
        "",
    ])  # fmt: skip
    (ROOT / "benchmarks" / "results" / "search.md").write_text(text)
    print(text)
    print(json.dumps({
        "benchmark": "search", "trials": args.trials, "search_seconds": searched["wall"], "jobs_seconds": jobs, "jobs_over_search_ratio": ratio,
        "temperature_sweep": {r["temperature"]: r["test_accuracy"] for r in sweep_rows},
        "hybrid_vs_alone": {r["strategy"]: r["test_accuracy"] for r in hybrid["rows"]},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
