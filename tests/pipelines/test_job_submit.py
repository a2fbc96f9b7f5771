"""The README's local cluster, typed as a user would: two `ray start` nodes on 127.0.0.1 and the main
pipeline through `ray job submit`, in a shell without the venv on PATH and without RAY_ADDRESS.

The commands are read from README.md between its `local-cluster` markers and run as written, but
for what two clusters on one machine cannot share: the test gives the nodes their own ports and
temp dirs and the run its own output, and it stops its nodes by their process group instead of the
README's `ray stop`, which would stop every Ray on the machine (the test session's too).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
START, END = "<!-- local-cluster:start -->", "<!-- local-cluster:end -->"


def readme_commands() -> list[str]:
    """The lines of the README's local-cluster block, continuation lines joined."""
    block = (ROOT / "README.md").read_text().split(START, 1)[1].split(END, 1)[0]
    body = block.split("```bash\n", 1)[1].rsplit("```", 1)[0]
    return [line.strip() for line in body.replace("\\\n", " ").splitlines() if line.strip()]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:  # all bound at once, so no two are the same
            s.bind(("", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _own_ports(ports: list[int]) -> str:
    # The test session's Ray (and any other on the machine) holds the default agent, metrics and
    # client ports; a node that cannot bind them loses its agent and the raylet exits.
    names = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
             "runtime-env-agent-port", "node-manager-port", "object-manager-port")  # fmt: skip
    return " ".join(f"--{name}={ports.pop()}" for name in names)


def adjust(commands: list[str], tmp: Path) -> tuple[list[str], str]:
    """The README's commands with this test's ports and temp dirs; also the dashboard address."""
    ports = _free_ports(16)
    gcs, dashboard, client = ports.pop(), ports.pop(), ports.pop()
    out = []
    for line in commands:
        if line.startswith("ray start --head"):
            line += f" --port={gcs} --dashboard-port={dashboard} --ray-client-server-port={client} --temp-dir={tmp / 'head'} {_own_ports(ports)}"
        elif line.startswith("ray start --address"):
            line = re.sub(r"--temp-dir=\S+", f"--temp-dir={tmp / 'node2'}", line.replace("127.0.0.1:6379", f"127.0.0.1:{gcs}"))
            line += f" {_own_ports(ports)}"
        elif line.startswith("ray job submit"):
            line = line.replace("127.0.0.1:8265", f"127.0.0.1:{dashboard}").replace("--output /tmp/raykd-job", f"--output {tmp / 'job-run'}")
        out.append(line)
    return out, f"http://127.0.0.1:{dashboard}"


def _clean_env() -> dict[str, str]:
    """A new shell's environment: no venv on PATH, no RAY_ADDRESS or other settings of this session."""
    venv = (ROOT / ".venv").resolve()
    path = [p for p in os.environ["PATH"].split(os.pathsep) if p and not Path(p).resolve().is_relative_to(venv)]
    env = {k: os.environ[k] for k in ("HOME", "USER", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    # Quiet and quick to fail: no usage report, and a stalled Ray Data stage fails in minutes.
    return env | {"PATH": os.pathsep.join(path), "RAY_USAGE_STATS_ENABLED": "0", "RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S": "300"}


def _stop(group: int) -> None:
    """SIGTERM the nodes' process group, SIGKILL what is left after a grace period."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not any(_group_of(pid) == group for pid in _pids()):
                return
            time.sleep(0.5)


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _kill_left_in(tmp: Path) -> None:
    """Processes outside the nodes' group that still run in the cluster's temp dir: the job's
    driver runs in a session of its own, in the job's working_dir copy there."""
    for pid in _pids():
        try:
            where = os.readlink(f"/proc/{pid}/cwd") + Path(f"/proc/{pid}/cmdline").read_text()
        except OSError:
            continue
        if str(tmp) in where:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_the_readmes_two_node_cluster_runs_the_pipeline_on_both_nodes():
    from ray.util.state import list_actors, list_nodes

    commands = readme_commands()
    assert commands[0].startswith(". .venv/bin/activate") and commands[-1] == "ray stop", commands
    assert (ROOT / ".venv" / "bin" / "activate").is_file(), "the README's commands assume make run's .venv"
    tmp = Path(tempfile.mkdtemp(prefix="rkd-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    lines, dashboard = adjust(commands[:-1], tmp)
    setup = [line for line in lines if not line.startswith("ray job submit")]
    (submit,) = [line for line in lines if line.startswith("ray job submit")]
    shell = [line for line in setup if not line.startswith("ray ")]  # activate and exports
    env = _clean_env()
    # The nodes' processes inherit this shell's new process group, which _stop ends.
    # A log file, not a pipe: the nodes' daemons outlive the shell and would hold a pipe open.
    log = tmp / "nodes.log"
    with log.open("w") as sink:
        nodes = subprocess.Popen(["bash", "-ec", "\n".join(setup)], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert nodes.wait(timeout=240) == 0, log.read_text()[-4000:]
        for _ in range(24):
            job = subprocess.run(["bash", "-ec", "\n".join([*shell, submit])], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
            # The dashboard and the head's job agent come up after `ray start` returns; until
            # then nothing is submitted, and a person would simply run the command again.
            if "submitted successfully" in job.stdout + job.stderr:
                break
            time.sleep(5)
        assert job.returncode == 0 and "succeeded" in job.stdout, job.stdout[-4000:] + job.stderr[-4000:]
        assert "| student KD (ResponseBased)" in job.stdout and "[raykd] student_kd epoch 2/2" in job.stdout

        alive = {n.node_id for n in list_nodes(address=dashboard) if n.state == "ALIVE"}
        assert len(alive) == 2
        # The two teacher replicas (each loads the teacher before any batch goes out) and the two
        # DDP workers ran one on each node.
        def nodes_of(actor_class: str) -> set[str]:
            return {a.node_id for a in list_actors(address=dashboard, filters=[("class_name", "=", actor_class)], detail=True)}

        teachers, workers = nodes_of("MapWorker(MapBatches(TeacherActor))"), nodes_of("RayTrainWorker")
        assert teachers == alive and workers == alive, (teachers, workers, alive)
        report = json.loads((tmp / "job-run" / "report.json").read_text())
        assert report["soft_targets"]["parts"] >= 2 and report["student"]["kd"]["epochs"] == 2
    finally:
        if nodes.poll() is None:
            nodes.kill()
        _stop(nodes.pid)
        _kill_left_in(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
