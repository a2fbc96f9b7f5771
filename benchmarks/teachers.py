"""Teacher kinds side by side, on the same inputs in one run.

1. Ensemble: K same-architecture members as one vmapped call vs a loop over members.
2. Quantized: int8 dynamic quantisation vs fp32 on CPU (speed-up and top-1 agreement).
3. Distributed: the teacher cut into 2 pipeline stages on Ray actors vs one process.

Prints each comparison, then ONE JSON line with the figures. `python benchmarks/teachers.py`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import torch  # noqa: E402

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


def trained(spec: dict, x: torch.Tensor, seed: int, steps: int = 60) -> torch.nn.Module:
    """A briefly trained model: agreement on an untrained one says little."""
    torch.manual_seed(seed)
    model = build_model(spec)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long() + 4 * (x[:, 2] * x[:, 3] > 0).long()  # 8 classes
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y % spec["num_classes"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def main() -> None:
    torch.manual_seed(0)
    figures: dict[str, object] = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.machine()}

    # 1. Ensemble: vmap vs loop, a small (overhead-bound) and a wider member ------------------
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

    # 2. Quantized: int8 vs fp32 on CPU ------------------------------------------------------
    qspec = {"type": "mlp", "in_features": 512, "hidden": [1024, 1024], "num_classes": 8}
    qx = torch.randn(2048, 512)
    fp32 = NeuralNetworkTeacher(trained(qspec, qx, seed=1))
    int8 = QuantizedTeacher(fp32, precision="int8")
    bench = qx[:256]
    t_fp32, t_int8 = side_by_side(lambda: fp32.predict(bench), lambda: int8.predict(bench), rounds=20)
    agreement = int8.agreement(qx)
    print(f"[quantized] {qspec['hidden']} batch 256: fp32 {t_fp32 * 1e3:.2f} ms, int8 {t_int8 * 1e3:.2f} ms, "
          f"fp32/int8 = {t_fp32 / t_int8:.2f}x, top-1 agreement {agreement:.4f} on {len(qx)} inputs")
    figures["quantized"] = {"batch": 256, "fp32_ms": t_fp32 * 1e3, "int8_ms": t_int8 * 1e3,
                            "speedup": t_fp32 / t_int8, "agreement": agreement}

    # 3. Distributed: 2 pipeline stages on Ray actors vs one process -------------------------
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

    print(json.dumps({"benchmark": "teachers", **figures}, default=float))


if __name__ == "__main__":
    main()
