"""Shared fixtures: one local Ray session per test run (ray.init costs ~4 s here)."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Callable

import pytest

# A stalled Ray Data job fails fast instead of waiting the default 30 minutes.
os.environ.setdefault("RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S", "120")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Ray Train's controller polls its workers every 2 s by default: for the suite's runs of a few
# seconds that is a quarter of each run (30.5 s -> 22.8 s for a 5-epoch, 2-worker student here).
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
# Each Ray Train run starts helper actors, each a process importing Ray (~2 CPU-s on these two
# cores): the watcher of spot-node preemption serves no test here, nor do Train's Prometheus metrics.
os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
os.environ.setdefault("RAY_TRAIN_METRICS_ENABLED", "0")
# make test's two pytest workers share the two cores: torch's intra-op threads in each (and in the
# notebook kernels they start) would spin on both cores at once; one thread each fills the machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

RAY_TEST_CPUS = 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules that use Ray first (their Ray Train and Ray Data runs take seconds to minutes), the quick
    ones after: under `make test`'s two workers (`--dist loadscope`) the long modules start early
    and the short ones fill the end, instead of one worker finishing a long module alone."""
    uses_ray = {
        item.module.__name__
        for item in items
        if item.get_closest_marker("ray") or item.get_closest_marker("cluster") or "ray_session" in item.fixturenames
    }
    items.sort(key=lambda item: item.module.__name__ not in uses_ray)  # stable: modules stay whole


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with 2 CPUs shared by every test that needs Ray; actors take fractions of a CPU."""
    from raykd.runtime import init_ray

    ray = init_ray(num_cpus=RAY_TEST_CPUS, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def s3_server():
    """A real S3-compatible server (moto's server mode) on a free port of 127.0.0.1, with the
    environment that points pyarrow at it set for the module; `bucket(name)` creates a bucket."""
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "raykd-test",
        "AWS_SECRET_ACCESS_KEY": "raykd-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # no credential lookups beyond the environment
    }
    admin = pafs.S3FileSystem(endpoint_override=env["AWS_ENDPOINT_URL"], allow_bucket_creation=True)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield {"env": env, "bucket": admin.create_dir}
    server.stop()


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., None]:
    """`wait_for(condition, driver, what, timeout=300)`: polls `condition` until it holds; fails with
    the driver's last output if that subprocess exits first, or after `timeout` seconds (generous:
    on a loaded 2-core machine a stage is slow, a stuck one never gets there)."""

    def wait(condition: Callable[[], bool], driver: subprocess.Popen, what: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if driver.poll() is not None:
                pytest.fail(f"the driver exited before {what}:\n{driver.stdout.read()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {timeout:.0f} s")
            time.sleep(0.1)

    return wait
