"""Soft targets: throughput of the Ray Data pipeline against a bare PyTorch loop, and the quality
of top-k soft targets for a student.

Throughput (default), in one process on the same data, alternating so that load from other
processes on the machine hits both alike:
  (a) bare loop: the best a user writes by hand: large batches, inference mode, on GPU bf16
      autocast, pinned memory, non-blocking copies and outputs kept on the device until the end;
      it computes the same columns (top-k values/indices, logsumexp) and writes one Parquet file.
  (b) raykd: `generate_soft_targets` (actor pool, part files, exact-once validation included).
It prints samples/s of both and their ratio, where the pipeline's time goes (start-up, streaming,
validation), and on GPU the achieved TFLOP/s against the device's peak.

`--quality`: bytes per sample and student accuracy on the digits data for k in {1, 5, 10 (= all
classes)} under both decodings ("renormalize", "residual"), against the float32 full logits and
labels alone: the shared stages' data, teacher ensemble (trained on the train split) and
soft-target stage (one per k), then each student through the student stage on Ray Train (a
[256] MLP, ResponseBased T=4, alpha=0.9, 1 worker), 3 seeds each.

Both end with ONE JSON line of figures and write their table into
benchmarks/results/soft_targets.md.

    python benchmarks/soft_targets.py             # ~1.5 min on 2 CPU cores
    python benchmarks/soft_targets.py --quality   # a few minutes: 8 conditions x 3 seeds of Ray Train students
    # one GPU (untested here: no GPU in the session that wrote this): ~1 min of bare compute on an
    # H100, the job size at which ~5 s of fixed start-up stays under 5%
    python benchmarks/soft_targets.py --device cuda --width 16384 --depth 8 --samples 10000000 \
        --batch-size 16384 --block-rows 1000000

The end-to-end ratio includes the pipeline's fixed start-up (the actor imports torch, the ids
pass, validation); the "streaming" row is the rate between the first and the last part file,
which is what longer jobs converge to.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S", "300")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from raykd.models import build_model  # noqa: E402
from raykd.soft_targets import SoftTargetMeta, generate_soft_targets, list_parts, stored_bytes, teacher_fingerprint  # noqa: E402
from raykd.soft_targets.actor import autocast_context, pick_device  # noqa: E402
from raykd.soft_targets.schema import to_table  # noqa: E402
from raykd.teachers import build_from_config  # noqa: E402
from raykd.teachers.checkpoint import MemberCheckpoint, save_members  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "soft_targets.md"

# Dense bf16 tensor-core peaks from the vendors' spec sheets (FLOP/s), first match on the device
# name wins; other devices are measured with a bf16 matmul.
PEAK_BF16 = [(("H200",), 989e12), (("H100", "NVL"), 835e12), (("H100", "PCIe"), 756e12), (("H100",), 989e12),
             (("A100",), 312e12), (("L40S",), 362e12), (("L4",), 121e12)]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Throughput
# ---------------------------------------------------------------------------------------------
def teacher_spec(args) -> dict:
    if args.teacher == "cnn":
        return {"type": "cnn", "in_features": args.features, "channels": [args.width // 32, args.width // 16], "num_classes": args.classes}
    return {"type": "mlp", "in_features": args.features, "hidden": [args.width] * args.depth, "num_classes": args.classes}


def flops_per_sample(model: torch.nn.Module, features: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(64, features)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops() / len(x)


def bare_loop(model: torch.nn.Module, x: np.ndarray, ids: np.ndarray, meta: SoftTargetMeta, args, out: Path) -> float:
    """Seconds for the hand-written loop: forward, top-k on the device, one Parquet file."""
    device = pick_device(args.device)
    model = model.to(device).eval()
    xs = torch.from_numpy(x)
    if device.type == "cuda":
        xs = xs.pin_memory()
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    values, indices, lse = [], [], []
    with torch.inference_mode(), autocast_context(device, args.precision):
        for s in range(0, len(xs), args.batch_size):
            logits = model(xs[s : s + args.batch_size].to(device, non_blocking=True)).float()  # (B, C)
            v, i = torch.topk(logits, args.k, dim=1)
            values.append(v.half())
            indices.append(i.to(torch.uint8 if args.classes <= 256 else torch.int64))
            lse.append(torch.logsumexp(logits, dim=1))
        v, i, l = (torch.cat(t).cpu().numpy() for t in (values, indices, lse))  # one sync at the end
    pq.write_table(to_table(ids, v, i, meta, {"logsumexp": l}), out / "bare.parquet", compression=args.compression, use_dictionary=False)
    seconds = time.perf_counter() - start
    if device.type == "cuda":  # leave the GPU's memory to the pipeline's actor
        model.to("cpu")
        del xs
        torch.cuda.empty_cache()
    return seconds


def make_dataset(x: np.ndarray, ids: np.ndarray, block_rows: int):
    """The inputs as a materialised Ray Dataset of `id`, `x` (tensor column) blocks."""
    import ray.data
    from ray.data.extensions import ArrowTensorArray

    tables = [
        pa.table({"id": pa.array(ids[s : s + block_rows]), "x": ArrowTensorArray.from_numpy(x[s : s + block_rows])})
        for s in range(0, len(ids), block_rows)
    ]
    return ray.data.from_arrow(tables).materialize()


def pipeline_run(ds, factory, meta: SoftTargetMeta, args, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    start = time.time()
    run = generate_soft_targets(
        ds, factory, out, meta,
        batch_size=args.batch_size, pool_size=args.replicas, num_cpus=args.actor_cpus, num_gpus=args.gpus_per_replica,
        device=args.device, threads=args.actor_threads, precision=args.precision, compression=args.compression,
        max_concurrent_calls=args.concurrent_calls,
    )  # fmt: skip
    end = time.time()
    if run.rows != args.samples or run.new_rows != args.samples:
        raise RuntimeError(f"pipeline wrote {run.new_rows} new / {run.rows} rows, expected {args.samples}")
    mtimes = sorted(p.mtime.timestamp() for p in list_parts(out))
    first_rows = pq.read_metadata(min(list_parts(out), key=lambda p: p.mtime_ns).path).num_rows
    streaming = (run.rows - first_rows) / max(mtimes[-1] - mtimes[0], 1e-9)
    return {
        "seconds": end - start,
        "startup_s": mtimes[0] - start,  # until the first part exists: ids pass, actor start, first batch
        "stream_s": mtimes[-1] - mtimes[0],
        "tail_s": end - mtimes[-1],  # summary collection and exact-once validation
        "streaming_samples_per_s": streaming,
        "parts": run.parts,
    }


def peak_flops(device: torch.device) -> tuple[float | None, str]:
    name = torch.cuda.get_device_name(device)
    for keys, value in PEAK_BF16:
        if all(k in name for k in keys):
            return value, f"{name} spec sheet, dense bf16"
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(20):
        a @ a
    torch.cuda.synchronize(device)
    return 20 * 2 * 8192**3 / (time.perf_counter() - start), f"{name}, measured bf16 matmul"


def start_ray(dashboard: bool = False) -> None:
    """A fresh local Ray on this machine's cores (never a cluster someone else started); the
    throughput runs leave the dashboard out, Ray Train students need it (its state API)."""
    from raykd.runtime import init_ray

    init_ray(address="local", num_cpus=os.cpu_count(), include_dashboard=dashboard)


def throughput(args) -> dict:
    import ray

    device = pick_device(args.device)
    if device.type == "cuda" and args.gpus_per_replica == 0:
        args.gpus_per_replica = 1.0 / args.replicas
    if device.type == "cuda" and args.actor_cpus > 0.5:
        args.actor_cpus = 0.5
    work = Path(tempfile.mkdtemp(prefix="raykd-bench-soft-"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.samples, args.features), dtype=np.float32)
    ids = np.arange(args.samples, dtype=np.int64)
    torch.manual_seed(0)
    spec = teacher_spec(args)
    model = build_model(spec).eval()
    save_members(work / "teacher", [MemberCheckpoint("teacher", spec, model)])
    factory = functools.partial(build_from_config, {"kind": "NeuralNetwork", "checkpoint": str(work / "teacher")})
    teacher = factory()
    meta = SoftTargetMeta(teacher=teacher.describe(), teacher_hash=teacher_fingerprint(teacher), num_classes=args.classes, k=args.k)
    fps = flops_per_sample(model, args.features)

    t0 = time.perf_counter()
    start_ray()
    ray_init_s = time.perf_counter() - t0
    ds = make_dataset(x, ids, args.block_rows)

    bare_s, pipe = [], []
    for r in range(args.repeats):
        bare_s.append(bare_loop(model, x, ids, meta, args, work))
        pipe.append(pipeline_run(ds, factory, meta, args, work / f"soft-{r}"))
        print(f"  repeat {r + 1}/{args.repeats}: bare {args.samples / bare_s[-1]:,.0f} samples/s, "
              f"raykd {args.samples / pipe[-1]['seconds']:,.0f} samples/s", flush=True)
    ray.shutdown()
    shutil.rmtree(work, ignore_errors=True)

    best_bare = min(bare_s)
    best_pipe = min(pipe, key=lambda p: p["seconds"])
    bare_rate, pipe_rate = args.samples / best_bare, args.samples / best_pipe["seconds"]
    figures = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "cpu_cores": os.cpu_count(),
        "teacher": spec,
        "teacher_params": sum(p.numel() for p in model.parameters()),
        "flops_per_sample": fps,
        "samples": args.samples,
        "batch_size": args.batch_size,
        "k": args.k,
        "replicas": args.replicas,
        "actor_threads": args.actor_threads,
        "compression": args.compression,
        "concurrent_calls": args.concurrent_calls,
        "ray_init_s": ray_init_s,
        "bare_samples_per_s": bare_rate,
        "raykd_samples_per_s": pipe_rate,
        "ratio": pipe_rate / bare_rate,
        "raykd_streaming_samples_per_s": best_pipe["streaming_samples_per_s"],
        "streaming_ratio": best_pipe["streaming_samples_per_s"] / bare_rate,
        "raykd_startup_s": best_pipe["startup_s"],
        "raykd_tail_s": best_pipe["tail_s"],
        "all_bare_samples_per_s": [args.samples / s for s in bare_s],
        "all_raykd_samples_per_s": [args.samples / p["seconds"] for p in pipe],
        "bare_tflops": bare_rate * fps / 1e12,
        "raykd_tflops": pipe_rate * fps / 1e12,
    }
    if device.type == "cuda":
        peak, source = peak_flops(device)
        figures.update(peak_tflops=peak / 1e12, peak_source=source, bare_mfu=bare_rate * fps / peak, raykd_mfu=pipe_rate * fps / peak)
    return figures


def throughput_table(f: dict) -> str:
    rows = [
        ("bare PyTorch loop", f"{f['bare_samples_per_s']:,.0f}", "1.00", f"{f['bare_tflops'] * 1e3:,.1f}"),
        ("raykd pipeline, end to end", f"{f['raykd_samples_per_s']:,.0f}", f"{f['ratio']:.2f}", f"{f['raykd_tflops'] * 1e3:,.1f}"),
        ("raykd pipeline, streaming part", f"{f['raykd_streaming_samples_per_s']:,.0f}", f"{f['streaming_ratio']:.2f}",
         f"{f['raykd_streaming_samples_per_s'] * f['flops_per_sample'] / 1e9:,.1f}"),
    ]
    lines = ["| run | samples/s | ratio to bare | GFLOP/s |", "|---|---:|---:|---:|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    t = f["teacher"]
    shape = f"MLP {t['hidden']}" if t["type"] == "mlp" else f"SmallCNN {t['channels']}"
    lines.append("")
    lines.append(
        f"Teacher {shape} ({f['teacher_params']:,} params, {f['flops_per_sample'] / 1e6:.1f} MFLOP/sample), "
        f"{f['samples']:,} samples of {t['in_features']}-d float32, batch {f['batch_size']}, k={f['k']}, "
        f"{f['replicas']} replica(s), device {f['device']} ({f['cpu_cores']} CPU cores), compression {f['compression']}. "
        f"Best of {len(f['all_bare_samples_per_s'])} alternating repeats; all: bare "
        f"{[round(v) for v in f['all_bare_samples_per_s']]}, raykd {[round(v) for v in f['all_raykd_samples_per_s']]}. "
        f"raykd start-up (ids pass, actor start, first batch) {f['raykd_startup_s']:.1f} s, "
        f"after the last part (summary, exact-once validation) {f['raykd_tail_s']:.1f} s."
    )
    if "peak_tflops" in f:
        lines.append(
            f"GPU: bare {f['bare_tflops']:.1f} TFLOP/s ({f['bare_mfu']:.1%} of peak), raykd {f['raykd_tflops']:.1f} TFLOP/s "
            f"({f['raykd_mfu']:.1%}) against {f['peak_tflops']:.0f} TFLOP/s ({f['peak_source']})."
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Quality
# ---------------------------------------------------------------------------------------------
def column_bytes(directory: Path) -> dict[str, int]:
    """Compressed bytes per column over every part, from the Parquet footers."""
    sizes: dict[str, int] = {}
    for part in list_parts(directory):
        md = pq.read_metadata(part.path)
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            for c in range(rg.num_columns):
                col = rg.column(c)
                name = col.path_in_schema.split(".")[0]
                sizes[name] = sizes.get(name, 0) + col.total_compressed_size
    return sizes


def full_logits_as_topk(table: pa.Table) -> pa.Table:
    """The float32 full logits as top-C columns (every class, in class order): what the student
    stage decodes, so the float32 condition trains through the same path as the top-k ones."""
    logits = table.column("logits").combine_chunks()
    c, n = logits.type.list_size, table.num_rows
    indices = pa.FixedSizeListArray.from_arrays(pa.array(np.tile(np.arange(c, dtype=np.uint8), n)), c)
    rest = table.drop_columns(["topk_values", "topk_indices", "logits"])
    return rest.append_column("topk_values", logits).append_column("topk_indices", indices)


def quality(args) -> dict:
    from raykd.config import RunConfig, StrategyConfig
    from raykd.soft_targets import join_with_inputs, read_soft_targets
    from raykd.stages import Run, SoftTargets, load_data, make_soft_targets, open_run, prepare_teacher, train_student

    work = Path(tempfile.mkdtemp(prefix="raykd-bench-quality-"))
    start_ray(dashboard=True)
    strategy = StrategyConfig(name="ResponseBased", params={"temperature": 4.0, "alpha": 0.9})
    cfg = RunConfig.model_validate(
        {
            "output": str(work),
            "teacher": {"epochs": args.teacher_epochs},
            "soft_targets": {"batch_size": args.batch_size},
            "student": {
                "model": {"type": "mlp", "hidden": [256]}, "strategy": strategy.model_dump(), "epochs": args.epochs,
                "batch_size": 32, "lr": 3e-3, "weight_decay": 0.0, "num_workers": 1, "baseline": False,
            },
        }
    ).check()  # fmt: skip
    run = open_run(cfg, "soft_targets_quality")
    data = load_data(run)
    n = len(data.train["id"])
    start = time.perf_counter()
    teacher = prepare_teacher(run, data)
    teacher_s = time.perf_counter() - start
    print(f"  teacher ensemble ({len(teacher.members)} members, {args.teacher_epochs} epochs): test accuracy {teacher.accuracy:.4f}", flush=True)

    def variant(k: int | None = None, decode: str = "renormalize") -> RunConfig:
        soft_targets = cfg.soft_targets.model_copy(update={"k": k, "decode": decode})
        return cfg.model_copy(update={"soft_targets": soft_targets})

    ks = [1, 5, 10]
    soft: dict[int | str, SoftTargets] = {}
    sizes = {}
    start = time.perf_counter()
    for k in ks:  # the soft-target stage, one directory per k
        soft[k] = make_soft_targets(Run(variant(k), work / f"k{k}"), data, teacher)
        sizes[k] = {"columns": column_bytes(soft[k].run.path), "file": stored_bytes(soft[k].run.path)}
    # float32 full logits: the same pipeline with full_logits on (the stage stores top-k only)
    ensemble = build_from_config(teacher.config)
    meta = SoftTargetMeta(teacher=ensemble.describe(), teacher_hash=teacher_fingerprint(ensemble), num_classes=data.num_classes,
                          k=data.num_classes, full_logits=True)  # fmt: skip
    full = generate_soft_targets(data.splits["train"], functools.partial(build_from_config, teacher.config), work / "soft-full", meta,
                                 batch_size=args.batch_size)  # fmt: skip
    full_ds, _ = read_soft_targets(full.path)
    soft["full"] = SoftTargets(full, data.num_classes, join_with_inputs(data.splits["train"], full_ds.map_batches(full_logits_as_topk, batch_format="pyarrow"), expected_rows=n))
    sizes["full"] = {"columns": column_bytes(full.path), "file": stored_bytes(full.path)}
    soft_s = time.perf_counter() - start

    conditions: list[tuple[str, int | str | None, str | None, int]] = [("labels only", None, None, 0)]
    for k in ks:
        payload = sum(sizes[k]["columns"][c] for c in ("id", "topk_values", "topk_indices", "logsumexp"))
        conditions.append((f"k={k}" + (" (all)" if k == 10 else ""), k, "renormalize", payload))
        if k < 10:
            conditions.append((f"k={k}", k, "residual", payload))
    full_payload = sizes["full"]["columns"]["id"] + sizes["full"]["columns"]["logits"]
    conditions.append(("full logits (float32)", "full", "full", full_payload))

    rows = []
    start = time.perf_counter()
    for label, k, mode, payload in conditions:
        # Every student is the student stage (Ray Train); the decode mode is the run's config.
        condition = Run(variant(None, mode if mode in ("renormalize", "residual") else "renormalize"), run.out)
        name = "labels_only" if k is None else f"k{k}-{mode}"
        accs = [
            train_student(condition, data, f"{name}-seed{seed}", strategy if k is not None else None, teacher,
                          soft.get(k), seed=seed)["accuracy"]
            for seed in range(args.seeds)
        ]  # fmt: skip
        row = {"targets": label, "k": k, "decode": mode, "bytes_per_sample": payload / n if payload else 0.0,
               "accuracy_mean": statistics.mean(accs), "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
               "accuracies": accs}  # fmt: skip
        if k is not None:
            row["file_bytes_per_sample"] = sizes[k]["file"] / n
        rows.append(row)
        print(f"  {label:<24} {mode or '-':<12} {row['bytes_per_sample']:6.1f} B/sample  "
              f"accuracy {row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f}", flush=True)
    import ray

    ray.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    return {"teacher_accuracy": teacher.accuracy, "train": n, "test": len(data.test["id"]), "seeds": args.seeds, "epochs": args.epochs,
            "batch_size": args.batch_size, "teacher_seconds": teacher_s, "soft_target_seconds": soft_s,
            "student_seconds": time.perf_counter() - start, "rows": rows}  # fmt: skip


def quality_table(f: dict) -> str:
    lines = ["| soft targets | decode | payload bytes/sample | file bytes/sample | student test accuracy |",
             "|---|---|---:|---:|---:|"]  # fmt: skip
    for r in f["rows"]:
        file_b = f"{r['file_bytes_per_sample']:.1f}" if "file_bytes_per_sample" in r else "-"
        lines.append(f"| {r['targets']} | {r['decode'] or '-'} | {r['bytes_per_sample']:.1f} | {file_b} | "
                     f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} |")  # fmt: skip
    lines.append("")
    lines.append(
        f"Digits: {f['train']} train / {f['test']} test samples; teacher ensemble test accuracy {f['teacher_accuracy']:.4f}. "
        f"Student MLP [256], {f['epochs']} epochs, ResponseBased T=4, alpha=0.9, mean ± std over {f['seeds']} seeds. "
        f"Payload = compressed Parquet bytes of the columns the student reads (id, topk_values, topk_indices, logsumexp; "
        f"id and logits for full logits); file bytes = whole part files (parts of {f['batch_size']} rows; the full-logits "
        "files also hold the top-10 columns), footers and per-file schema metadata included."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
def write_section(name: str, title: str, body: str) -> None:
    """Replaces the section `name` of the results file, keeping the others."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = RESULTS.read_text() if RESULTS.exists() else "# Soft targets: `python benchmarks/soft_targets.py`\n"
    block = f"<!-- {name} -->\n## {title}\n\n{body}\n<!-- /{name} -->"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quality", action="store_true", help="bytes per sample and student accuracy per k instead of throughput")
    p.add_argument("--teacher", choices=("mlp", "cnn"), default="mlp")
    p.add_argument("--width", type=int, default=1024, help="MLP hidden width (SmallCNN: channels width/32, width/16)")
    p.add_argument("--depth", type=int, default=8, help="MLP hidden layers")
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--samples", type=int, default=200_000)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.add_argument("--threads", type=int, default=None, help="torch threads of the bare loop (default: torch's)")
    p.add_argument("--actor-threads", type=int, default=None, help="torch threads per actor (default: cores / replicas)")
    p.add_argument("--actor-cpus", type=float, default=0.5, help="Ray CPUs reserved per actor")
    p.add_argument("--gpus-per-replica", type=float, default=0.0, help="default on CUDA: 1 / replicas")
    p.add_argument("--compression", default="zstd", choices=("zstd", "lz4", "snappy", "none"))
    p.add_argument("--concurrent-calls", type=int, default=2, help="max_concurrent_calls_per_actor")
    p.add_argument("--block-rows", type=int, default=50_000, help="rows per input block")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=40, help="student epochs (--quality)")
    p.add_argument("--teacher-epochs", type=int, default=30, help="teacher member epochs (--quality)")
    p.add_argument("--no-results", action="store_true", help="do not write benchmarks/results/soft_targets.md")
    args = p.parse_args(argv)
    if not 1 <= args.k <= args.classes:
        p.error(f"--k must be in [1, --classes={args.classes}], got {args.k}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    start = time.perf_counter()
    if args.quality:
        figures = quality(args)
        table = quality_table(figures)
        title = "Quality: bytes per sample and student accuracy per k (digits)"
    else:
        figures = throughput(args)
        table = throughput_table(figures)
        title = "Throughput: raykd pipeline vs a bare PyTorch loop"
    seconds = time.perf_counter() - start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print()
    print(table)
    if not args.no_results:
        flags = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--no-results"]
        command = " ".join(["python benchmarks/soft_targets.py", *flags])
        # one section per mode and flag set: rerunning a command replaces its own table only
        shown = [a for a in flags if a != "--quality"]
        title += f" (`{' '.join(shown)}`)" if shown else ""
        write_section(" ".join(["quality" if args.quality else "throughput", *shown]).replace("--", ""), title,
                      f"`{command}` on {machine}, {seconds:.0f} s, 1-min load average {load:.1f} at the end "
                      f"(the machine may be shared).\n\n{table}")  # fmt: skip
    print(json.dumps({"benchmark": "soft_targets", "mode": "quality" if args.quality else "throughput",
                      "machine": machine, "seconds": seconds, "load_average_1min": load, **figures}, default=float))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
