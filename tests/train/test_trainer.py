"""The student loop inside real Ray Train workers: checkpoint cadence, keep-best-N, early stopping, exact repeats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from raykd.config import load_config
from raykd.stages import Run, load_data, open_run, train_student

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def small_run(ray_session, tmp_path_factory):
    cfg = load_config(["--limit", "300", "--output", str(tmp_path_factory.mktemp("trainer"))])
    run = open_run(cfg, "trainer")
    return run, load_data(run)


def _student(small_run, name: str, *flags: str) -> tuple[dict, list[dict]]:
    run, data = small_run
    cfg = load_config(["--limit", "300", "--output", str(run.out), *flags])
    result = train_student(Run(cfg, run.out), data, name, None)
    with open(run.out / name / "metrics.csv", newline="") as f:
        return result, list(csv.DictReader(f))


def _checkpoints(run: Run, name: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run.out / "checkpoints" / name).glob("checkpoint_*/state.json"))]


def test_checkpoints_every_n_epochs_keep_the_best_n_and_a_rerun_resumes_from_them(small_run):
    # Written after epochs 2, 4 and 5 (0-based 1, 3, 4); the best two of those three are kept.
    flags = ("--epochs", "5", "--set", "student.checkpoint_every=2", "--set", "student.keep_best=2")
    result, rows = _student(small_run, "every2", *flags)
    kept = _checkpoints(small_run[0], "every2")
    assert len(kept) == 2 and {s["epoch"] for s in kept} <= {1, 3, 4}
    written = sorted(float(r["val_accuracy"]) for r in rows if int(r["epoch"]) in (1, 3, 4))
    assert sorted(s["val_accuracy"] for s in kept) == written[-2:]
    assert result["val_accuracy"] == max(s["val_accuracy"] for s in kept)
    # The same student again in the same place: Ray Train resumes from its checkpoints, nothing is
    # retrained, and the per-epoch history is kept.
    again, rows_again = _student(small_run, "every2", *flags)
    assert rows_again == rows and again["accuracy"] == result["accuracy"]
    with pytest.raises(ValueError, match=r"holds checkpoints of another student .* give this run a new --output"):
        _student(small_run, "every2", *flags, "--set", "student.model={type: mlp, hidden: [16]}")


def test_early_stopping_stops_at_the_expected_epoch_and_wandb_offline_holds_each_epoch(small_run):
    # min_delta 1.0 can never be beaten after the first epoch: with patience 2 the run ends after epoch 3.
    result, rows = _student(small_run, "stops", "--epochs", "10", "--set", "student.early_stopping=true",
                            "--set", "student.min_delta=1.0", "--set", "student.patience=2",
                            "--set", "tracking.wandb_mode=offline", "--set", "tracking.tags=[test]")  # fmt: skip
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2] and result["epochs"] == 3
    last = max(_checkpoints(small_run[0], "stops"), key=lambda s: s["epoch"])
    assert last["epoch"] == 2 and last["early_stopping"]["stale_epochs"] == 2
    run_dir = Path(result["wandb"])
    assert run_dir.name.startswith("offline-run-") and run_dir.parent.parent == small_run[0].out / "stops"
    (records,) = run_dir.glob("run-*.wandb")
    data = records.read_bytes()
    # wandb's record log stores each logged row's keys and JSON values as they were given.
    for key in ("val_accuracy", "val_ece", "loss", "lr"):
        assert key.encode() in data, key
    assert repr(float(rows[-1]["val_accuracy"])).encode() in data or rows[-1]["val_accuracy"].encode() in data


def test_a_killed_worker_resumes_from_its_checkpoint_and_ends_like_an_uninterrupted_run(small_run):
    import os
    import signal
    import threading
    import time

    import psutil
    import ray

    from raykd.train.metrics import read_metrics

    # This session's Train workers: children of its raylet (without the dashboard's state API).
    raylet = psutil.Process(ray._private.worker._global_node.all_processes["raylet"][0].process.pid)

    def train_workers() -> list[int]:
        return [p.pid for p in raylet.children() if p.name().startswith("ray::RayTrainWo") or "RayTrainWorker" in " ".join(p.cmdline()[:1])]

    flags = ("--epochs", "30", "--num-workers", "1", "--max-failures", "1", "--set", "student.keep_best=30")
    _, clean = _student(small_run, "uninterrupted", *flags)

    run = small_run[0]
    done: dict = {}
    thread = threading.Thread(target=lambda: done.update(rows=_student(small_run, "killed", *flags)[1]))
    thread.start()
    killed, deadline = None, time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        if len(read_metrics(run.out / "killed" / "metrics.csv")) >= 3:
            workers = train_workers()
            if workers:
                killed = workers[0]
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    thread.join(timeout=600)
    assert killed is not None, "the run ended before a worker could be killed; make its epochs longer"
    resumed = done["rows"]
    # The same epochs, each once, and the same numbers: after a restart the worker reloads the model,
    # optimizer and early-stopping state of the latest checkpoint, and every epoch's shuffle is seeded
    # by (seed, epoch), so the resumed epochs repeat the uninterrupted ones exactly (and the epochs
    # before the kill show that the same seed gives the same run; ZeRO-2's test shows it on 2 workers).
    assert [int(r["epoch"]) for r in resumed] == list(range(30))
    for a, b in zip(clean, resumed):
        for key in ("loss", "val_accuracy", "val_loss"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-6, abs=1e-7), (a["epoch"], key)


def test_a_zero2_bf16_student_resumes_from_its_sharded_optimizer_state_like_an_uninterrupted_run(small_run):
    pytest.importorskip("deepspeed")
    zero = ("--epochs", "3", "--num-workers", "2", "--set", "student.zero_stage=2", "--set", "student.precision=bf16", "--set", "student.keep_best=10")
    result, clean = _student(small_run, "zero2", *zero)
    files = {p.name for p in Path(result["checkpoint"]).iterdir()}
    # Each worker's optimizer shard, merged by Ray Train into one directory; the full weights as usual.
    assert {"model.safetensors", "zero_optimizer_rank0.pt", "zero_optimizer_rank1.pt"} <= files and "optimizer.pt" not in files
    assert result["accuracy"] > 0.5
    _student(small_run, "zero2_split", *zero[:1], "1", *zero[2:])  # one epoch, then the same student to three
    _, resumed = _student(small_run, "zero2_split", *zero)
    assert [int(r["epoch"]) for r in resumed] == [0, 1, 2]
    for a, b in zip(clean, resumed):
        for key in ("loss", "val_accuracy", "val_loss"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-6, abs=1e-7), (a["epoch"], key)


def test_a_zero3_student_gathers_its_sharded_weights_into_the_checkpoint(small_run):
    pytest.importorskip("deepspeed")
    from raykd.train import load_student

    result, rows = _student(small_run, "zero3", "--epochs", "2", "--num-workers", "2", "--set", "student.zero_stage=3")
    model, _ = load_student(result["checkpoint"])
    assert sum(p.numel() for p in model.parameters()) == result["params"] and result["accuracy"] > 0.5
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
