"""Born-Again Networks (Furlanello et al. 2018): generation g+1 learns from generation g.

Generation 0 trains on labels; every later generation has the same architecture and learns from
the frozen previous one (the `Self` teacher kind). Reports each generation's test accuracy and
that of the BAN ensemble of all generations so far. The generations run as one Ray task, so the
same command works locally and with `ray job submit --working-dir . -- python pipelines/born_again.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from raykd.data import InputSpec, read_inputs, resolve_inputs, split_inputs, to_numpy
from raykd.runtime import init_ray
from raykd.strategies.functional import check_temperature, check_unit_interval
from raykd.teachers.self_teacher import born_again_generations


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64])
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--alpha", type=float, default=1.0, help="weight of the KD term (BAN: 1, pure distillation)")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    try:
        if args.generations < 1:
            raise ValueError(f"--generations must be >= 1, got {args.generations}")
        if args.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
        check_temperature("--temperature", args.temperature)
        check_unit_interval("--alpha", args.alpha)
    except ValueError as err:
        parser.error(str(err))
    return args


def generations_task(spec: dict, train: dict, test: dict, args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(1)
    results = born_again_generations(
        spec,
        torch.as_tensor(train["x"]),
        torch.as_tensor(train["label"]),
        torch.as_tensor(test["x"]),
        torch.as_tensor(test["label"]),
        generations=args.generations,
        epochs=args.epochs,
        lr=args.lr,
        temperature=args.temperature,
        alpha=args.alpha,
        seed=args.seed,
    )
    return [{"generation": r.generation, "accuracy": r.accuracy, "ensemble_accuracy": r.ensemble_accuracy} for r in results]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.output or Path("runs") / time.strftime("born_again-%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ray = init_ray()
    start = time.perf_counter()
    inputs = resolve_inputs(InputSpec())
    splits = split_inputs(read_inputs(inputs, args.limit), seed=0, val_fraction=0.15, test_fraction=0.2)
    train, test = to_numpy(splits["train"]), to_numpy(splits["test"])
    spec = {"type": "mlp", "in_features": inputs.num_features, "hidden": args.hidden, "num_classes": inputs.num_classes}
    rows = ray.get(ray.remote(num_cpus=1)(generations_task).remote(spec, train, test, args))
    report = {"generations": rows, "model": spec, "args": vars(args), "seconds": round(time.perf_counter() - start, 2)}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    lines = ["| generation | test accuracy | BAN ensemble (0..g) |", "|---|---|---|"]
    lines += [f"| {r['generation']} | {100 * r['accuracy']:.2f}% | {100 * r['ensemble_accuracy']:.2f}% |" for r in rows]
    (out / "report.md").write_text("# Born-again generations\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nreport: {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
