"""`--output s3://...` against a real S3-compatible server (moto's server mode on 127.0.0.1): the main
pipeline's driver is killed while the teacher actors write soft targets to the bucket, the same
command run again completes, writes only the missing parts, and every id is there exactly once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from raykd import storage
from raykd.data.splits import split_codes
from raykd.soft_targets import list_parts, read_ids, validate_exactly_once

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 400
TRAIN_IDS = np.arange(LIMIT)[split_codes(np.arange(LIMIT), 0, 0.15, 0.2) == 0]  # the run's split: digits ids are row numbers
# Small parts (16 rows each) make the soft-target stage long enough to kill the driver inside it.
COMMAND = [
    "--limit", str(LIMIT), "--teacher-epochs", "1", "--epochs", "1", "--num-workers", "1", "--no-baseline",
    "--set", "soft_targets.batch_size=16", "--set", "tracking.wandb=false",
]  # fmt: skip


@pytest.fixture(scope="module")
def s3(ray_session, s3_server):
    """A new bucket on the test's S3 server (its own staging folder too, whoever else runs this
    test) and the shared Ray cluster's address; `s3_server` put the endpoint in the environment."""
    bucket = f"raykd-{uuid.uuid4().hex[:8]}"
    s3_server["bucket"](bucket)
    yield {"bucket": bucket, "gcs": ray_session.get_runtime_context().gcs_address}
    shutil.rmtree(storage.staging_dir(f"s3://{bucket}/run"), ignore_errors=True)


def _driver(s3: dict, output: str, cwd: Path) -> subprocess.Popen:
    """The main pipeline as a user runs it, joining the shared test cluster as its own job."""
    env = {**os.environ, "RAY_ADDRESS": s3["gcs"], "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "pipelines" / "ensemble_to_student.py"), "--output", output, *COMMAND],
        cwd=cwd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _ids_in(part: str) -> np.ndarray:
    fs, path = storage.resolve(part)
    return pq.read_table(path, columns=["id"], filesystem=fs).column("id").to_numpy()


def _settled_parts(soft: str, quiet: float = 2.0, limit: float = 30.0) -> dict[str, int]:
    """Part name → mtime once no part has appeared for `quiet` seconds (the killed job's actors
    go with their driver, a moment later)."""
    seen, since, deadline = {}, time.monotonic(), time.monotonic() + limit
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        now = {p.base_name: p.mtime_ns for p in list_parts(soft)}
        if now != seen:
            seen, since = now, time.monotonic()
        time.sleep(0.2)
    return seen


@pytest.fixture(scope="module")
def interrupted_then_rerun(s3, tmp_path_factory, wait_for):
    """Run 1 killed (SIGKILL to its driver) once some parts are in the bucket; run 2, the same
    command, to the end. Both in a fresh working directory, where nothing may appear."""
    cwd = tmp_path_factory.mktemp("cwd")
    output = f"s3://{s3['bucket']}/run"
    soft = f"{output}/soft_targets"
    first = _driver(s3, output, cwd)
    try:
        wait_for(lambda: len(list_parts(soft)) >= 4, first, "4 soft-target parts reached the bucket")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    before = _settled_parts(soft)
    done = read_ids(soft)
    second = _driver(s3, output, cwd)
    log, _ = second.communicate(timeout=300)
    return {"output": output, "soft": soft, "cwd": cwd, "before": before, "done": done, "rc": second.returncode, "log": log}


def test_the_rerun_completes_and_the_run_directory_on_s3_is_whole(interrupted_then_rerun):
    run = interrupted_then_rerun
    assert run["rc"] == 0, run["log"][-4000:]
    output = run["output"]
    report = json.loads(storage.read_bytes(f"{output}/report.json"))
    assert report["soft_targets"]["path"] == run["soft"]
    assert report["student"]["kd"]["checkpoint"].startswith(f"{output}/checkpoints/student_kd/checkpoint_")
    assert storage.exists(f"{report['student']['kd']['checkpoint']}/model.safetensors")
    assert json.loads(storage.read_bytes(f"{output}/teachers/teachers.json"))["members"]
    assert b"| student KD (ResponseBased)" in storage.read_bytes(f"{output}/report.md")
    assert storage.read_bytes(f"{output}/student_kd/curves.png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert storage.read_bytes(f"{output}/student_kd/metrics.csv").startswith(b"epoch,")
    assert b"output: s3://" in storage.read_bytes(f"{output}/config.yaml")
    # The log names the URI for the run and its report, and where the driver staged its files.
    assert f"run directory {output} (the driver's files are staged in" in run["log"]
    assert f"report: {output}/report.json  {output}/report.md" in run["log"]
    assert not any(run["cwd"].iterdir()), "the URI was taken for a local path"


def test_the_rerun_writes_only_the_parts_the_killed_driver_had_not(interrupted_then_rerun):
    run = interrupted_then_rerun
    before, done, soft = run["before"], run["done"], run["soft"]
    assert 4 * 16 <= len(done) < len(TRAIN_IDS), "the first driver was killed inside the soft-target stage"
    assert len(np.unique(done)) == len(done)  # readable parts (read_ids would name a broken one), no id twice
    after = {p.base_name: p.mtime_ns for p in list_parts(soft)}
    assert {name: after[name] for name in before} == before  # the killed run's parts were left alone
    new = np.concatenate([_ids_in(f"{soft}/{name}") for name in sorted(set(after) - set(before))])
    np.testing.assert_array_equal(np.sort(new), np.setdiff1d(TRAIN_IDS, done))
    report = json.loads(storage.read_bytes(f"{run['output']}/report.json"))
    assert report["soft_targets"]["new_rows"] == len(TRAIN_IDS) - len(done)
    assert f"new_rows {len(TRAIN_IDS) - len(done)}" in run["log"]


def test_every_train_id_is_in_the_bucket_exactly_once(interrupted_then_rerun):
    soft = interrupted_then_rerun["soft"]
    assert validate_exactly_once(soft, TRAIN_IDS) == len(TRAIN_IDS)
    assert not [f for f in storage.list_files(soft) if not f.base_name.startswith("part-")]
