"""Every distillation strategy on the embedded digits, same teacher, 3 seeds each.

The data, the teacher ensemble and its soft targets are made once by the shared stages (the
teacher runs once); then each strategy trains the same CNN student through the student stage
(Ray Train), beside a labels-only baseline. Writes benchmarks/results/strategies.md and ends with one JSON line.

    python benchmarks/strategies.py [--seeds 3] [--epochs 30] [--only ResponseBased RelationBased]
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

from raykd.config import RunConfig, StrategyConfig  # noqa: E402
from raykd.stages import Run, run_soft_targets, train_student  # noqa: E402

# One student for every strategy; its channels equal teacher member1's so FSP (which needs equal
# channel counts, as in the paper) can pair them.
STUDENT = {"type": "cnn", "channels": [16, 32], "embed": 16}
TEACHER_LAYERS = ["member1.body.conv1", "member1.body.conv2", "member1.fc"]
STUDENT_LAYERS = ["body.conv1", "body.conv2", "fc"]
SPATIAL = {"AttentionBased", "NeuronSelectivity", "FlowBased", "SelfDistillation"}  # need (B, C, H, W) maps
# FitNets guides one middle layer through a regressor (the paper; RepDistiller's hint layer 2).
HINT = {"FeatureBased", "Hybrid"}
PARAMS = {
    "FeatureBased": {"regressor": "always"},
    "Hybrid": {
        "components": [
            {"name": "ResponseBased", "params": {"temperature": 4.0, "alpha": 0.9}},
            {"name": "FeatureBased", "params": {"regressor": "always"}},
        ]
    },
}
STRATEGIES = [
    "ResponseBased", "FeatureBased", "AttentionBased", "RelationBased", "ContrastiveBased", "SimilarityPreserving",
    "FlowBased", "ProbabilisticTransfer", "VariationalInformation", "FactorTransfer", "NeuronSelectivity",
    "SelfDistillation", "Hybrid", "CorrelationCongruence", "DecoupledKD",
]
# Not run here: DistilBERT and HiddenStateDistillation need transformer hidden states, and
# DetectionDistillation needs detection heads; pipelines/transformer_distill.py and the unit
# tests cover them.


def layers(name: str | None, all_layers: list[str]) -> list[str]:
    if name in HINT:
        return all_layers[1:2]
    return all_layers[:2] if name in SPATIAL else all_layers


def variant(base: RunConfig, name: str | None, seed: int) -> RunConfig:
    """The base run with this strategy's student layers, teacher layers and seed."""
    student = base.student.model_copy(update={"layers": layers(name, STUDENT_LAYERS)})
    teacher = base.teacher.model_copy(update={"layers": layers(name, TEACHER_LAYERS)})
    return base.model_copy(update={"student": student, "teacher": teacher, "seed": seed})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--only", nargs="*", default=None, help="re-run these rows and merge them into the saved results")
    args = parser.parse_args()
    names = args.only or STRATEGIES

    work = Path(tempfile.mkdtemp(prefix="raykd-bench-strategies-"))
    base = RunConfig.model_validate(
        {"output": str(work), "student": {"model": STUDENT, "epochs": args.epochs, "baseline": False}}
    ).check()
    run, data, teacher, soft = run_soft_targets(base, "strategies")
    rows = []
    for name in [None, *names]:
        accs, epoch_seconds = [], []
        strategy = StrategyConfig(name=name, params=PARAMS.get(name, {})) if name else None
        for seed in range(args.seeds):
            result = train_student(Run(variant(base, name, seed), run.out), data, f"{name or 'labels_only'}-seed{seed}", strategy, teacher, soft)
            accs.append(result["accuracy"])
            epoch_seconds.append(result["epoch_seconds"])
        row = {
            "strategy": name or "labels only (baseline)",
            "mean": statistics.mean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "accuracies": accs,
            "seconds_per_epoch": statistics.mean(epoch_seconds),
        }
        rows.append(row)
        print(f"{row['strategy']:<24} {100 * row['mean']:6.2f} ± {100 * row['std']:4.2f}  {row['seconds_per_epoch']:.2f} s/epoch", flush=True)

    saved = ROOT / "benchmarks" / "results" / "strategies.json"
    if args.only and saved.is_file():
        previous = {r["strategy"]: r for r in json.loads(saved.read_text())["rows"]}
        previous.update({r["strategy"]: r for r in rows})
        rows = list(previous.values())
    saved.write_text(json.dumps({"epochs": args.epochs, "seeds": args.seeds, "rows": rows}, indent=1))
    header = (
        f"Digits test accuracy (n={len(data.test['id'])}), student {STUDENT} ({result['params']:,} params), "
        f"teacher ensemble {teacher.accuracy * 100:.2f}% ({teacher.params:,} params), "
        f"{args.epochs} epochs, {args.seeds} seeds, 2 Ray Train workers on {platform.machine()} CPU "
        "(seconds per epoch: one worker's training pass, teacher forward included for online strategies).\n\n"
    )
    table = ["| strategy | test accuracy (mean ± std) | seconds / epoch |", "|---|---|---|"]
    table += [f"| {r['strategy']} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} | {r['seconds_per_epoch']:.2f} |" for r in rows]
    out = ROOT / "benchmarks" / "results" / "strategies.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Strategies on digits\n\n" + header + "\n".join(table) + "\n")
    print("\n".join(table))
    print(json.dumps({"benchmark": "strategies", "epochs": args.epochs, "seeds": args.seeds, "teacher_accuracy": teacher.accuracy, "rows": rows}))


if __name__ == "__main__":
    main()
