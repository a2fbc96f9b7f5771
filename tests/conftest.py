"""Shared fixtures: one local Ray session per test run (ray.init costs ~4 s here)."""

from __future__ import annotations

import os

import pytest

# A stalled Ray Data job fails fast instead of waiting the default 30 minutes.
os.environ.setdefault("RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S", "120")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

RAY_TEST_CPUS = 2


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with 2 CPUs shared by every test that needs Ray; actors take fractions of a CPU."""
    from raykd.runtime import init_ray

    ray = init_ray(num_cpus=RAY_TEST_CPUS, include_dashboard=False)
    yield ray
    ray.shutdown()
