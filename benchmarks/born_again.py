"""The tutorial's Born-Again exercise on the embedded digits: 3 generations after the labels-only
generation 0, over several seeds, through `raykd born-again`'s stages (each generation learns
from the frozen previous one; same architecture, epochs and student loop).

Prints and writes benchmarks/results/born_again.md (test accuracy per generation and of the BAN
ensemble of generations 0..g, mean ± std over seeds) and ends with one JSON line.

    python benchmarks/born_again.py [--seeds 0 1 2] [--generations 4] [--epochs 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raykd.config import BornAgainConfig, validate  # noqa: E402
from raykd.report import markdown_table  # noqa: E402
from raykd.stages.born_again import run_born_again  # noqa: E402


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} ± {100 * spread:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--generations", type=int, default=4, help="generation 0 (labels only) and the born-again ones")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    start = time.perf_counter()
    reports = []
    with tempfile.TemporaryDirectory() as work:
        for seed in args.seeds:
            cfg = validate(BornAgainConfig, {
                "output": str(Path(work) / f"seed_{seed}"), "seed": seed, "tracking": {"wandb": False},
                "student": {"epochs": args.epochs}, "born_again": {"generations": args.generations},
            })  # fmt: skip
            reports.append(run_born_again(cfg))
    wall = time.perf_counter() - start

    by_generation = list(zip(*(r["generations"] for r in reports)))
    rows = [("generation", "teacher", "test accuracy (%)", "BAN ensemble 0..g (%)")]
    for generation in by_generation:
        rows.append((
            str(generation[0]["generation"]),
            "labels only" if generation[0]["teacher"] is None else f"generation {generation[0]['generation'] - 1}",
            _mean_std([g["accuracy"] for g in generation]),
            _mean_std([g["ensemble_accuracy"] for g in generation]),
        ))  # fmt: skip
    first = reports[0]
    strategy = first["strategy"]
    text = "\n".join([
        "# Born-Again Networks on the embedded digits (`python benchmarks/born_again.py`)",
        "",
        f"Furlanello et al. 2018: generation g learns from the frozen generation g-1 ({strategy['name']} {strategy['params']}),",
        f"same architecture ({first['model']}, {first['generations'][0]['params']:,} parameters), {args.epochs} epochs each;",
        f"mean ± std over seeds {args.seeds}; {first['data']['train']} train / {first['data']['test']} test rows.",
        f"Measured on {platform.machine()} with {platform.processor() or 'a CPU'}, {wall:.0f} s in all.",
        "",
        markdown_table(rows),
        "",
    ])  # fmt: skip
    (ROOT / "benchmarks" / "results" / "born_again.md").write_text(text)
    print(text)
    print(json.dumps({
        "benchmark": "born_again", "seeds": args.seeds, "epochs": args.epochs, "seconds": wall,
        "accuracy": [[g["accuracy"] for g in generation] for generation in by_generation],
        "ensemble_accuracy": [[g["ensemble_accuracy"] for g in generation] for generation in by_generation],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
