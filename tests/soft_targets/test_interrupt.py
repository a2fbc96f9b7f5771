"""Resumable and exact: a killed driver or a killed teacher actor still ends with every input id in
exactly one row, and a rerun writes only what is missing."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from raykd.models import build_model
from raykd.soft_targets import (
    SoftTargetMeta,
    TopKEncoder,
    generate_parts,
    generate_soft_targets,
    list_parts,
    read_ids,
    teacher_fingerprint,
    validate_exactly_once,
)
from raykd.teachers import build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members

pytestmark = pytest.mark.ray

ROWS, FEATURES, BATCH = 480, 8, 16

# The driver of the first run, in its own process and its own fresh local Ray (address="local"
# never joins the test session's cluster). Classes defined in __main__ reach the Ray workers by
# value, so the slow encoder needs no importable module.
DRIVER = textwrap.dedent(
    """
    import functools, json, sys, time
    import numpy as np, pyarrow as pa, ray
    from ray.data.extensions import ArrowTensorArray
    from raykd.soft_targets import SoftTargetMeta, TopKEncoder, generate_parts
    from raykd.teachers import build_from_config

    cfg = json.loads(sys.argv[1])

    class SlowEncoder(TopKEncoder):
        def __init__(self, meta, delay):
            super().__init__(meta)
            self.delay = delay

        def __call__(self, batch, x, teacher):
            time.sleep(self.delay)
            return super().__call__(batch, x, teacher)

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 2**20, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((cfg["rows"], cfg["features"]), dtype=np.float32)
    ds = ray.data.from_arrow(pa.table({"id": np.arange(cfg["rows"]), "x": ArrowTensorArray.from_numpy(x)}))
    factory = functools.partial(build_from_config, {"kind": "NeuralNetwork", "checkpoint": cfg["teacher"]})
    print("started", flush=True)
    generate_parts(ds, factory, SlowEncoder(SoftTargetMeta(**cfg["meta"]), cfg["delay"]), cfg["out"],
                   batch_size=cfg["batch"], threads=1)
    print("finished", flush=True)
    """
)


def inputs(rows: int = ROWS):
    import ray.data
    from ray.data.extensions import ArrowTensorArray

    x = np.random.default_rng(0).standard_normal((rows, FEATURES), dtype=np.float32)
    return ray.data.from_arrow(pa.table({"id": np.arange(rows), "x": ArrowTensorArray.from_numpy(x)})).materialize()


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """(factory, meta) of a small MLP teacher saved as a checkpoint the workers can load."""
    spec = {"type": "mlp", "in_features": FEATURES, "hidden": [16], "num_classes": 10}
    torch.manual_seed(0)
    directory = save_members(tmp_path_factory.mktemp("teacher"), [MemberCheckpoint("teacher", spec, build_model(spec))])
    config = {"kind": "NeuralNetwork", "checkpoint": str(directory)}
    model = build_from_config(config)
    meta = SoftTargetMeta(teacher=model.describe(), teacher_hash=teacher_fingerprint(model), num_classes=10, k=3)
    return functools.partial(build_from_config, config), meta, str(directory)


def _session_alive(sid: int) -> dict[int, str]:
    """Processes of the subprocess's session: its driver, Ray's daemons and workers (each Ray
    worker has its own process group, but all stay in the session)."""
    rows = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True, check=True).stdout.splitlines()
    found = {}
    for row in rows:
        pid, session, *args = row.split(None, 2)
        if int(session) == sid:
            found[int(pid)] = args[0] if args else ""
    return found


def _kill_driver(proc: subprocess.Popen) -> None:
    """SIGKILL the driver alone, let Ray take its workers down, then clear what is left, so that
    nothing of the first run can still write while the rerun runs."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any("raylet" in a or "MapWorker" in a for a in _session_alive(proc.pid).values()):
        time.sleep(0.2)
    for pid in _session_alive(proc.pid):  # dashboard/runtime-env agents can outlive the driver
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 15
    while _session_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _session_alive(proc.pid), f"processes of the killed run survived: {_session_alive(proc.pid)}"


def test_a_killed_driver_leaves_whole_parts_and_the_rerun_writes_only_the_rest(ray_session, teacher, tmp_path, wait_for):
    factory, meta, teacher_dir = teacher
    out = tmp_path / "soft"
    cfg = {"rows": ROWS, "features": FEATURES, "batch": BATCH, "delay": 0.3, "teacher": teacher_dir,
           "meta": json.loads(meta.to_metadata()[b"raykd.soft_targets"]), "out": str(out)}  # fmt: skip
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S"] = "60"
    proc = subprocess.Popen(
        [sys.executable, str(script), json.dumps(cfg)], cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: out.exists() and len(list_parts(out)) >= 4, proc, "4 parts were written")
    finally:
        _kill_driver(proc)

    before = {p.base_name: p.mtime_ns for p in list_parts(out)}
    done = read_ids(out)
    assert 4 <= len(before) and len(done) < ROWS, "the driver was killed mid-job"
    assert len(np.unique(done)) == len(done) and len(done) == BATCH * len(before)  # whole parts only

    run = generate_soft_targets(inputs(), factory, out, meta, batch_size=64)

    assert (run.rows, run.new_rows) == (ROWS, ROWS - len(done))
    assert validate_exactly_once(out, np.arange(ROWS)) == ROWS
    after = {p.base_name: p.mtime_ns for p in list_parts(out)}
    assert {name: after[name] for name in before} == before  # the first run's parts were left alone
    new_ids = np.concatenate([pq.read_table(out / name, columns=["id"]).column("id").to_numpy() for name in after if name not in before])
    np.testing.assert_array_equal(np.sort(new_ids), np.setdiff1d(np.arange(ROWS), done))
    assert not list(out.glob(".tmp-*"))


class DieOnce(TopKEncoder):
    """Kills its actor process (no exception, no cleanup) on the `at`-th batch, once per marker
    file, after leaving a half-written temp file as a writer killed mid-write would."""

    def __init__(self, meta: SoftTargetMeta, marker: str, at: int) -> None:
        super().__init__(meta)
        self.marker, self.at, self.calls = marker, at, 0

    def __call__(self, batch, x, teacher):
        self.calls += 1
        if self.calls == self.at and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            (Path(self.marker).parent / "soft" / ".tmp-killed.parquet").write_bytes(b"PAR1 half a part")
            os._exit(1)
        with open(Path(self.marker).parent / "calls.log", "a") as log:
            log.write(f"{os.getpid()}\n")
        return super().__call__(batch, x, teacher)


def test_a_killed_actor_is_restarted_and_its_batches_land_exactly_once(ray_session, teacher, tmp_path):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import test modules
    factory, meta, _ = teacher
    out = tmp_path / "soft"
    out.mkdir()
    marker = tmp_path / "died"
    # one input block, so the killed task already wrote some parts that its retry writes again
    run = generate_parts(inputs(), factory, DieOnce(meta, str(marker), at=5), out, batch_size=BATCH, threads=1)

    died = int(marker.read_text())
    writers = {int(pid) for pid in (tmp_path / "calls.log").read_text().split()}
    assert writers - {died}, "no batch ran in a restarted actor"
    assert (run.rows, run.new_rows, run.parts) == (ROWS, ROWS, ROWS // BATCH)
    assert validate_exactly_once(out, np.arange(ROWS)) == ROWS
    for part in list_parts(out):  # whole, readable parts; the killed writer's temp file is not one
        assert pq.read_metadata(part.path).num_rows == BATCH
    assert all(p.base_name.startswith("part-") for p in list_parts(out))
