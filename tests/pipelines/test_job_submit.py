"""The main job as users run it on a cluster: `ray start --head` + `ray job submit`.

The cluster is a real one on 127.0.0.1 in its own temp dir (so the shared test session never
connects to it), started with `--block` in its own process group and torn down at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture
def head_node():
    temp_dir = tempfile.mkdtemp(prefix="rkd-", dir="/tmp")
    gcs_port, dashboard_port = _free_port(), _free_port()
    # The shared test session's Ray already holds the default agent, metrics and client ports;
    # this node gets its own, or its job agent never comes up ("No available agent").
    own_ports = [
        f"--{name}={_free_port()}"
        for name in (
            "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
            "runtime-env-agent-port", "ray-client-server-port", "node-manager-port", "object-manager-port",
        )
    ]
    proc = subprocess.Popen(
        [
            str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs_port}",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}", "--num-cpus=2", f"--temp-dir={temp_dir}",
            "--include-dashboard=true", "--disable-usage-stats", *own_ports,
        ],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard_port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"ray start exited early:\n{proc.stdout.read()}")
            probe = subprocess.run([str(BIN / "ray"), "job", "list", "--address", address], env=_env(), capture_output=True, text=True)
            if probe.returncode == 0:
                break
            time.sleep(2)
        else:
            pytest.fail("the head node's job server did not come up within 120 s")
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # --block tears down the node's processes on SIGTERM
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-f", temp_dir], check=False)


def test_job_submit_runs_the_pipeline_on_a_real_cluster(head_node, tmp_path):
    out = tmp_path / "job-run"
    command = [
        str(BIN / "ray"), "job", "submit", "--address", head_node, "--working-dir", str(ROOT), "--",
        "python", "pipelines/ensemble_to_student.py", "--limit", "300", "--teacher-epochs", "3",
        "--epochs", "2", "--num-workers", "1", "--strategy", "RelationBased", "--no-baseline", "--output", str(out),
    ]
    for _ in range(12):
        submit = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
        # The job server answers before the node's job agent has registered; nothing was submitted.
        if "No available agent to submit job" not in submit.stdout + submit.stderr:
            break
        time.sleep(5)
    assert submit.returncode == 0, submit.stdout[-4000:] + submit.stderr[-4000:]
    assert "succeeded" in submit.stdout
    # RelationBased needs teacher features, so the teacher ran inside the job's Ray Train worker.
    assert "| student KD (RelationBased)" in submit.stdout
    # The run is watchable from `ray job submit`: a line per stage and per epoch reach the client.
    assert "[raykd] teachers: done in" in submit.stdout and "[raykd] student_kd epoch 2/2" in submit.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["student"]["baseline"] is None
    assert report["soft_targets"] is None  # nothing written that the feature strategy would not read
    assert report["seconds"]["student_kd"] > 0 and (out / "student_kd" / "curves.png").is_file()
