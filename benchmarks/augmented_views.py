"""Augmentation-aware soft targets vs a single plain view vs an id-keyed cache, on digits.

1. plain:    V=1, no augmentation: the teacher labels each image once, the student sees it as is.
2. views:    V=4 replayable views (random ±1-pixel shifts): the teacher labels every view, the
             student replays each stored view and learns from that view's own targets.
3. id-cache: the id-keyed cache of other toolkits: the plain view's targets, paired with a fresh
             random shift of the image every epoch (targets the teacher never gave that image).

Data, teacher ensemble, soft targets and students come from the shared stages (`raykd.stages`):
plain and views are the soft-target stage with `soft_targets.views` 1 and V (the real Ray Data
actor pool, then `join_views` for V > 1), as `raykd run --views V` runs it. Every student is the
student stage on Ray Train (MLP [256], ResponseBased T=4 alpha=0.9); id-cache trains on the plain
targets through a Ray Data `map_batches` that draws a new random shift each time it runs, with
`student.cache_shards: false` so the shard is streamed, and so re-shifted, every epoch. Writes
benchmarks/results/augmented_views.md and ends with one JSON line.

    python benchmarks/augmented_views.py [--views 4] [--epochs 30] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raykd.config import RunConfig, StrategyConfig  # noqa: E402
from raykd.data.augment import ViewSpec, apply_views  # noqa: E402
from raykd.stages import Run, SoftTargets, load_data, make_soft_targets, open_run, prepare_teacher, train_student  # noqa: E402

STUDENT = {"type": "mlp", "hidden": [256]}
TEACHER_MEMBERS = [
    {"type": "cnn", "channels": [32, 64], "dropout": 0.2},
    {"type": "mlp", "hidden": [512], "dropout": 0.1},
]
STRATEGY = StrategyConfig(name="ResponseBased", params={"temperature": 4.0, "alpha": 0.9})


def fresh_shift(batch: dict[str, np.ndarray], spec: ViewSpec) -> dict[str, np.ndarray]:
    """Each image shifted by a new random (dy, dx) in [-pad, pad]², drawn from fresh entropy every
    time Ray Data runs this (every epoch of a streamed shard), as an id-keyed cache's loader would."""
    rng = np.random.default_rng()
    n = len(batch["x"])
    params = {
        "crop_top": rng.integers(0, 2 * spec.pad + 1, n),
        "crop_left": rng.integers(0, 2 * spec.pad + 1, n),
        "flip": np.zeros(n, dtype=bool),
    }
    return {**batch, "x": apply_views(batch["x"], params, spec)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="raykd-views-"))
    # Raw pixels (no standardization): a shifted image moves ink onto border pixels whose train
    # std is ~0, which per-pixel standardization would blow up.
    cfg = RunConfig.model_validate(
        {
            "output": str(work),
            "data": {"standardize": False},
            "teacher": {"members": TEACHER_MEMBERS, "epochs": 30},
            "soft_targets": {"k": 10, "pad": 1},
            "student": {
                "model": STUDENT, "strategy": STRATEGY.model_dump(), "epochs": args.epochs,
                "batch_size": 64, "num_workers": 1, "baseline": False,
            },
        }
    ).check()
    run = open_run(cfg, "augmented_views")
    data = load_data(run)
    teacher = prepare_teacher(run, data)

    soft: dict[str, SoftTargets] = {}
    for name, views in (("plain", 1), ("views", args.views)):
        mode = cfg.model_copy(update={"soft_targets": cfg.soft_targets.model_copy(update={"views": views})})
        soft[name] = make_soft_targets(Run(mode, run.out), data, teacher, out=work / name, name=f"soft_targets_{name}")

    # id-cache: the plain targets (keyed by sample id) under a new shift on every pass.
    id_cache_ds = soft["plain"].train.map_batches(fresh_shift, batch_format="numpy", fn_kwargs={"spec": ViewSpec(channels=1, pad=cfg.soft_targets.pad)})
    streamed = Run(cfg.model_copy(update={"student": cfg.student.model_copy(update={"cache_shards": False})}), run.out)
    modes = {
        "plain": (run, soft["plain"], None),
        "views": (run, soft["views"], None),
        "id-cache": (streamed, soft["plain"], id_cache_ds),
    }
    results = {}
    for mode, (mode_run, targets, train_ds) in modes.items():
        accs = [
            train_student(mode_run, data, f"{mode}-seed{s}", STRATEGY, teacher, targets, train_ds=train_ds, seed=s)["accuracy"]
            for s in range(args.seeds)
        ]
        results[mode] = {"mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "accuracies": accs}
        print(f"{mode:<9} {100 * results[mode]['mean']:.2f} ± {100 * results[mode]['std']:.2f}", flush=True)

    table = ["| soft targets | student test accuracy (mean ± std) |", "|---|---|"]
    table += [f"| {m} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} |" for m, r in results.items()]
    text = (
        "# Augmentation-aware soft targets (digits)\n\n"
        f"Teacher ensemble test accuracy {100 * teacher.accuracy:.2f}%; "
        f"student MLP [256], ResponseBased T=4 alpha=0.9, {args.epochs} epochs, {args.seeds} seeds, "
        f"trained by the student stage (Ray Train, {cfg.student.num_workers} worker); views = {args.views} "
        "(view 0 plain, others random ±1-pixel shifts).\n\n" + "\n".join(table) + "\n"
    )
    out = ROOT / "benchmarks" / "results" / "augmented_views.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(json.dumps({"benchmark": "augmented_views", "views": args.views, "epochs": args.epochs, "results": results}))


if __name__ == "__main__":
    main()
