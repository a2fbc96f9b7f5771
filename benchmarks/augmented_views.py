"""Augmentation-aware soft targets vs a single plain view vs an id-keyed cache, on digits.

1. plain:    V=1, no augmentation: the teacher labels each image once, the student sees it as is.
2. views:    V=4 replayable views (random ±1-pixel shifts): the teacher labels every view, the
             student replays each stored view and learns from that view's own targets.
3. id-cache: the id-keyed cache of other toolkits: the plain view's targets, paired with a fresh
             random shift of the image every epoch (targets the teacher never gave that image).

Targets come from the real Ray Data actor pool (raykd.soft_targets.views); the students train
in-process with ResponseBased (T=4, alpha=0.9) for speed. Writes
benchmarks/results/augmented_views.md and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raykd import strategies  # noqa: E402
from raykd.data import InputSpec, read_inputs, resolve_inputs, split_inputs, to_numpy  # noqa: E402
from raykd.data.augment import ViewSpec, apply_views, view_params  # noqa: E402
from raykd.models import build_model  # noqa: E402
from raykd.models.fit import accuracy, predict_logits  # noqa: E402
from raykd.outputs import ModelOutput  # noqa: E402
from raykd.runtime import init_ray  # noqa: E402
from raykd.soft_targets import SoftTargetMeta, decode_topk, read_soft_targets, teacher_fingerprint  # noqa: E402
from raykd.soft_targets.views import generate_view_targets, join_views  # noqa: E402
from raykd.teachers import build_from_config  # noqa: E402
from raykd.teachers.train import train_members  # noqa: E402
from raykd.teachers.checkpoint import save_members  # noqa: E402


def train_student(x, targets, labels, epochs, seed, fresh_views: ViewSpec | None = None, ids=None) -> torch.nn.Module:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = build_model({"type": "mlp", "in_features": 64, "hidden": [256], "num_classes": 10})
    kd = strategies.build("ResponseBased", temperature=4.0, alpha=0.9)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    xs, ts, ys = torch.as_tensor(x), torch.as_tensor(targets), torch.as_tensor(labels)
    for epoch in range(epochs):
        if fresh_views is not None:  # a new random shift per epoch, as an id-keyed cache would do
            spec = ViewSpec(views=fresh_views.views, pad=fresh_views.pad, seed=seed * 1000 + epoch)
            params = view_params(ids, spec)
            pick = {k: v[1 :: spec.views] for k, v in params.items()}  # one random (non-plain) view each
            xs = torch.as_tensor(apply_views(x, pick, spec.pad))
        for batch in torch.randperm(len(xs), generator=g).split(64):
            loss = kd(ModelOutput(model(xs[batch])), ModelOutput(ts[batch]), ys[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="raykd-views-"))
    init_ray()
    inputs = resolve_inputs(InputSpec())
    splits = {k: v.materialize() for k, v in split_inputs(read_inputs(inputs), 0, 0.15, 0.2).items()}
    train, test = to_numpy(splits["train"]), to_numpy(splits["test"])
    specs = [
        {"type": "cnn", "in_features": 64, "channels": [32, 64], "num_classes": 10, "dropout": 0.2},
        {"type": "mlp", "in_features": 64, "hidden": [512], "num_classes": 10, "dropout": 0.1},
    ]
    save_members(work / "teachers", train_members(specs, train["x"], train["label"], epochs=30, lr=1e-3, seed=0))
    config = {"kind": "Ensemble", "checkpoint": str(work / "teachers")}
    teacher = build_from_config(config)
    meta = SoftTargetMeta(teacher=teacher.describe(), teacher_hash=teacher_fingerprint(teacher), num_classes=10, k=10)

    data = {}
    for name, views in (("plain", 1), ("views", args.views)):
        spec = ViewSpec(views=views, pad=1)
        run = generate_view_targets(splits["train"], functools.partial(build_from_config, config), work / name, meta, spec)
        soft, _ = read_soft_targets(run.path)
        rows = to_numpy(join_views(splits["train"], soft, spec, expected_rows=len(train["id"]) * views))
        targets = decode_topk(torch.as_tensor(rows["topk_values"]), torch.as_tensor(rows["topk_indices"]), 10)
        data[name] = (rows, targets.numpy())

    results = {}
    for mode in ("plain", "views", "id-cache"):
        rows, targets = data["views" if mode == "views" else "plain"]
        fresh = ViewSpec(views=args.views, pad=1) if mode == "id-cache" else None
        accs = [
            accuracy(predict_logits(train_student(rows["x"], targets, rows["label"], args.epochs, s, fresh, rows["sample_id"]), test["x"]), test["label"])
            for s in range(args.seeds)
        ]
        results[mode] = {"mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "accuracies": accs}
        print(f"{mode:<9} {100 * results[mode]['mean']:.2f} ± {100 * results[mode]['std']:.2f}", flush=True)

    table = ["| soft targets | student test accuracy (mean ± std) |", "|---|---|"]
    table += [f"| {m} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} |" for m, r in results.items()]
    text = (
        "# Augmentation-aware soft targets (digits)\n\n"
        f"Teacher ensemble test accuracy {100 * accuracy(teacher.predict(torch.as_tensor(test['x'])).logits, test['label']):.2f}%; "
        f"student MLP [256], ResponseBased T=4 alpha=0.9, {args.epochs} epochs, {args.seeds} seeds; views = {args.views} "
        "(view 0 plain, others random ±1-pixel shifts).\n\n" + "\n".join(table) + "\n"
    )
    out = ROOT / "benchmarks" / "results" / "augmented_views.md"
    out.write_text(text)
    print(text)
    print(json.dumps({"benchmark": "augmented_views", "views": args.views, "epochs": args.epochs, "results": results}))


if __name__ == "__main__":
    main()
