"""Does the soft-target stage's driver stay flat as the rows grow? Peak driver memory and wall time
of `generate_soft_targets` for 1M, 4M and 16M synthetic rows, side by side in one process.

The inputs are made by Ray (`ray.data.range` and a `map_batches` that derives 8 features from each
id), so the driver never holds them; the teacher is a linear layer (8 features -> 10 classes,
top-5), so the stage's own work (reading, bookkeeping, part files) is what is measured. A thread
samples the driver's resident memory every 20 ms during each stage; the table gives its peak and
its rise over the driver's memory just before the stage. A first, unreported run of one batch pays
the one-time start-up (the actor's worker imports torch), so the first row is not inflated by it.

    python benchmarks/scale.py                       # ~10 min on 2 CPU cores
    python benchmarks/scale.py --rows 100000 200000  # a quick look

Ends with ONE JSON line {"rows": [...], "driver_peak_mb": [...], "seconds": [...], ...} and writes
its table into benchmarks/results/scale.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "scale.md"

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

from raykd.models import build_model  # noqa: E402
from raykd.soft_targets import SoftTargetMeta, generate_soft_targets, teacher_fingerprint  # noqa: E402
from raykd.teachers import build_from_config  # noqa: E402
from raykd.teachers.checkpoint import MemberCheckpoint, save_members  # noqa: E402

FEATURES, CLASSES, K = 8, 10, 5
MB = 2**20


def features(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray Data batch function: 8 float features per id, a fixed function of the id."""
    ids = batch["id"]
    x = np.sin(ids[:, None].astype(np.float32) * np.arange(1, FEATURES + 1, dtype=np.float32) * np.float32(1e-3))
    return {"id": ids, "x": x}


class PeakRSS:
    """The driver's peak resident memory while the `with` block runs, sampled by a thread."""

    def __init__(self, every_s: float = 0.02) -> None:
        self.process, self.every_s = psutil.Process(), every_s
        self.before = self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self.before = self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def one_run(rows: int, factory, meta: SoftTargetMeta, args, work: Path) -> dict:
    import ray.data

    inputs = ray.data.range(rows, override_num_blocks=max(4, rows // args.block_rows)).map_batches(features, batch_format="numpy")
    out = work / f"soft-{rows}"
    with PeakRSS() as rss:
        start = time.perf_counter()
        run = generate_soft_targets(inputs, factory, out, meta, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
    if run.rows != rows or run.new_rows != rows:
        raise RuntimeError(f"the stage wrote {run.rows} rows ({run.new_rows} new) for {rows} inputs")
    shutil.rmtree(out)
    figures = {"rows": rows, "seconds": seconds, "parts": run.parts, "driver_before_mb": rss.before / MB, "driver_peak_mb": rss.peak / MB}
    print(f"[scale] {json.dumps(figures)}", flush=True)
    return figures


def table(runs: list[dict], args, total: float) -> str:
    lines = [
        f"`python benchmarks/scale.py` on {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, torch {torch.__version__}, Ray local with {os.cpu_count()} CPUs; "
        f"{total:.0f} s in all, 1-min load average {os.getloadavg()[0]:.1f} at the end (the machine is shared: "
        "wall times are inflated by other processes).",
        "",
        f"Inputs: `ray.data.range` + 8 features per id made in Ray tasks; teacher: linear 8 -> 10, top-{K}; "
        f"`batch_size={args.batch_size}` (one part file per batch); one actor (0.5 CPU).",
        "",
        "| rows | driver RSS before (MB) | driver peak during the stage (MB) | rise (MB) | stage wall time (s) | parts |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['rows']:,} | {r['driver_before_mb']:.0f} | {r['driver_peak_mb']:.0f} | "
            f"{r['driver_peak_mb'] - r['driver_before_mb']:.0f} | {r['seconds']:.1f} | {r['parts']} |"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000, 16_000_000])
    p.add_argument("--batch-size", type=int, default=65_536, help="rows per teacher batch, so per part file")
    p.add_argument("--block-rows", type=int, default=500_000, help="rows per input block made by ray.data.range")
    p.add_argument("--no-write", action="store_true", help=f"leave {RESULTS.relative_to(ROOT)} alone")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import ray

    from raykd.runtime import init_ray

    args = parse(argv)
    begin = time.perf_counter()
    init_ray(address="local", num_cpus=os.cpu_count(), include_dashboard=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    work = Path(tempfile.mkdtemp(prefix="raykd-scale-"))
    try:
        spec = {"type": "mlp", "in_features": FEATURES, "hidden": [], "num_classes": CLASSES}
        torch.manual_seed(0)
        config = {"kind": "NeuralNetwork", "checkpoint": str(save_members(work / "teacher", [MemberCheckpoint("teacher", spec, build_model(spec))]))}
        teacher = build_from_config(config)
        meta = SoftTargetMeta(teacher=teacher.describe(), teacher_hash=teacher_fingerprint(teacher), num_classes=CLASSES, k=K)
        factory = functools.partial(build_from_config, config)
        one_run(args.batch_size, factory, meta, args, work)  # warm-up, not reported
        runs = [one_run(rows, factory, meta, args, work) for rows in args.rows]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        ray.shutdown()
    text = table(runs, args, time.perf_counter() - begin)
    print(text)
    if not args.no_write:
        # Only the measured block is replaced: notes below it (the old code's figures) stay.
        old = RESULTS.read_text() if RESULTS.exists() else "# Soft-target stage at scale: `python benchmarks/scale.py`\n\n<!-- run -->\n<!-- /run -->\n"
        head, rest = old.split("<!-- run -->", 1)
        RESULTS.write_text(f"{head}<!-- run -->\n{text}\n<!-- /run -->{rest.split('<!-- /run -->', 1)[1]}")
    print(json.dumps({
        "rows": [r["rows"] for r in runs],
        "driver_peak_mb": [round(r["driver_peak_mb"], 1) for r in runs],
        "seconds": [round(r["seconds"], 1) for r in runs],
        "driver_before_mb": [round(r["driver_before_mb"], 1) for r in runs],
        "parts": [r["parts"] for r in runs],
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
