"""Teacher kinds side by side, on the same inputs in one run.

1. Ensemble: K same-architecture members as one vmapped call vs a loop over members.
2. Quantized: the int8, bf16, int8_weight and int4 replicas vs fp32 on CPU (speed and top-1
   agreement); on a GPU, when there is one, the fp8 and int4 replicas vs bf16 there.
3. Distributed: the teacher cut into 2 pipeline stages on Ray actors vs one process.

Prints each comparison, then ONE JSON line with the figures. `python benchmarks/teachers.py`;
`--only quantized` (or `ensemble`, `distributed`) runs one part.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from raykd.data.digits import DIGITS_FEATURES, digits_table  # noqa: E402
from raykd.models import build_model  # noqa: E402
from raykd.teachers import DistributedTeacher, EnsembleTeacher, NeuralNetworkTeacher, QuantizedTeacher  # noqa: E402


def side_by_side(a, b, rounds: int = 15, warmup: int = 2) -> tuple[float, float]:
    """Median seconds per call of `a` and `b`, calls alternating so that load on a shared machine
    hits both alike."""
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for _ in range(rounds):
        for fn, times in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def trained(spec: dict, x: torch.Tensor, y: torch.Tensor, seed: int, steps: int = 60) -> torch.nn.Module:
    """A briefly trained model: agreement on an untrained one says little."""
    torch.manual_seed(seed)
    model = build_model(spec)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def ensemble(figures: dict[str, object]) -> None:
    """vmap vs loop, a small (overhead-bound) and a wider member."""
    figures["ensemble"] = {}
    for label, k, batch, hidden in (("small", 8, 64, [64]), ("wide", 8, 512, [256, 256])):
        spec = {"type": "mlp", "in_features": 64, "hidden": hidden, "num_classes": 10}
        x = torch.randn(batch, 64)
        members = [NeuralNetworkTeacher(build_model(spec)) for _ in range(k)]
        vmapped, looped = EnsembleTeacher(members), EnsembleTeacher(members, vectorize=False)
        max_diff = float((vmapped.predict(x).logits - looped.predict(x).logits).abs().max())
        t_vmap, t_loop = side_by_side(lambda: vmapped.predict(x), lambda: looped.predict(x), rounds=30)
        print(f"[ensemble/{label}] {k} members {hidden} batch {batch}: vmap {t_vmap * 1e3:.2f} ms, "
              f"loop {t_loop * 1e3:.2f} ms, loop/vmap = {t_loop / t_vmap:.2f}x, max |diff| {max_diff:.1e}")
        figures["ensemble"][label] = {"members": k, "hidden": hidden, "batch": batch, "vmap_ms": t_vmap * 1e3,
                                      "loop_ms": t_loop * 1e3, "speedup": t_loop / t_vmap, "max_abs_diff": max_diff}


def top1(teacher: QuantizedTeacher, x: torch.Tensor) -> torch.Tensor:
    return teacher.predict(x).logits.argmax(-1).cpu()


def quantized(figures: dict[str, object]) -> None:
    """Each replica's speed against its baseline and its top-1 agreement with the fp32 teacher."""
    qspec = {"type": "mlp", "in_features": 512, "hidden": [1024, 1024], "num_classes": 8}
    qx = torch.randn(2048, 512)
    qy = (qx[:, 0] > 0).long() + 2 * (qx[:, 1] > 0).long() + 4 * (qx[:, 2] * qx[:, 3] > 0).long()  # 8 classes
    fp32 = NeuralNetworkTeacher(trained(qspec, qx, qy, seed=1))
    # The synthetic teacher's margins are wide enough that every replica agrees on every input; real
    # data tells the precisions apart: an MLP fit to the first 1,200 digits, scored on the other 597,
    # where the teacher is least sure.
    table = digits_table()
    pixels = torch.from_numpy(np.stack([table[c].to_numpy() for c in DIGITS_FEATURES], 1))
    labels = torch.tensor(table["label"].to_numpy())
    digit_spec = {"type": "mlp", "in_features": pixels.shape[1], "hidden": [512, 512], "num_classes": 10}
    digits = trained(digit_spec, pixels[:1200], labels[:1200], seed=0, steps=150)
    digit_x = pixels[1200:]
    bench = qx[:256]
    figures["quantized"] = {
        "hidden": qspec["hidden"], "batch": len(bench), "inputs": len(qx), "digits_hidden": digit_spec["hidden"],
        "digits_inputs": len(digit_x),
        "digits_teacher_accuracy": float((digits(digit_x).argmax(-1) == labels[1200:]).float().mean()), "cpu": {}}
    for precision in ("int8", "bf16", "int8_weight", "int4"):
        replica = QuantizedTeacher(fp32, precision=precision)
        t_fp32, t_q = side_by_side(lambda: fp32.predict(bench), lambda: replica.predict(bench), rounds=20)
        agreement, on_digits = replica.agreement(qx), QuantizedTeacher(digits, precision=precision).agreement(digit_x)
        print(f"[quantized/cpu] {qspec['hidden']} batch {len(bench)}: fp32 {t_fp32 * 1e3:.2f} ms, {precision} "
              f"{t_q * 1e3:.2f} ms, fp32/{precision} = {t_fp32 / t_q:.2f}x, top-1 agreement {agreement:.4f} "
              f"on {len(qx)} inputs, {on_digits:.4f} on the held-out digits")
        figures["quantized"]["cpu"][precision] = {"fp32_ms": t_fp32 * 1e3, "ms": t_q * 1e3, "speedup": t_fp32 / t_q,
                                                  "agreement": agreement, "agreement_digits": on_digits}
    if not torch.cuda.is_available():
        print("[quantized/cuda] skipped: no CUDA device")
        return
    # The GPU formats against bf16, what a GPU replica would otherwise run in; outputs come back to
    # the host inside the timing, as an actor's soft targets do.
    gx, gbench, gdigit_x = qx.cuda(), bench.cuda(), digit_x.cuda()
    bf16 = QuantizedTeacher(fp32, precision="bf16", device="cuda")
    figures["quantized"]["cuda"] = {
        "device": torch.cuda.get_device_name(), "bf16_agreement": bf16.agreement(gx),
        "bf16_agreement_digits": QuantizedTeacher(digits, precision="bf16", device="cuda").agreement(gdigit_x)}
    for precision in ("fp8", "int4"):
        replica = QuantizedTeacher(fp32, precision=precision, device="cuda")
        t_bf16, t_q = side_by_side(lambda: bf16.predict(gbench).logits.cpu(),
                                   lambda: replica.predict(gbench).logits.cpu(), rounds=50)
        agreement, with_bf16 = replica.agreement(gx), float((top1(replica, gx) == top1(bf16, gx)).float().mean())
        on_digits = QuantizedTeacher(digits, precision=precision, device="cuda").agreement(gdigit_x)
        print(f"[quantized/cuda] batch {len(gbench)}: bf16 {t_bf16 * 1e3:.3f} ms, {precision} {t_q * 1e3:.3f} ms, "
              f"bf16/{precision} = {t_bf16 / t_q:.2f}x, top-1 agreement {agreement:.4f} with fp32 "
              f"({with_bf16:.4f} with bf16), {on_digits:.4f} on the held-out digits")
        figures["quantized"]["cuda"][precision] = {"bf16_ms": t_bf16 * 1e3, "ms": t_q * 1e3, "speedup": t_bf16 / t_q,
                                                   "agreement": agreement, "agreement_with_bf16": with_bf16,
                                                   "agreement_digits": on_digits}


def distributed(figures: dict[str, object]) -> None:
    """2 pipeline stages on Ray actors vs one process."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    dspec = {"type": "mlp", "in_features": 256, "hidden": [1024, 1024, 1024], "num_classes": 10}
    dmodel = build_model(dspec).eval()
    single = NeuralNetworkTeacher(dmodel)
    dx = torch.randn(2048, 256)
    figures["distributed"] = {"batch": len(dx), "stages": 2}
    for micro in (1, 4):
        piped = DistributedTeacher(dmodel, plan=2, num_micro_batches=micro, stage_num_cpus=1.0)
        diff = float((piped.predict(dx).logits - single.predict(dx).logits).abs().max())
        t_pipe, t_single = side_by_side(lambda: piped.predict(dx), lambda: single.predict(dx), rounds=7)
        piped.shutdown()
        print(f"[distributed] {dspec['hidden']} batch {len(dx)}: one process {t_single * 1e3:.1f} ms, "
              f"2 stages x {micro} micro-batches {t_pipe * 1e3:.1f} ms, pipeline/single = {t_pipe / t_single:.2f}x, "
              f"max |diff| {diff:.1e}")
        figures["distributed"][f"pipeline_{micro}mb_ms"] = t_pipe * 1e3
        figures["distributed"][f"single_ms_vs_{micro}mb"] = t_single * 1e3
        figures["distributed"][f"pipeline_{micro}mb_over_single"] = t_pipe / t_single
    ray.shutdown()


PARTS = {"ensemble": ensemble, "quantized": quantized, "distributed": distributed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(PARTS), help="run this part alone")
    args = parser.parse_args()
    figures: dict[str, object] = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.machine()}
    for name, part in PARTS.items():
        if args.only in (None, name):
            torch.manual_seed(0)  # each part draws the same inputs whether run alone or with the others
            part(figures)
    print(json.dumps({"benchmark": "teachers", **figures}, default=float))


if __name__ == "__main__":
    main()
