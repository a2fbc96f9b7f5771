"""Starting or joining Ray with raykd's defaults."""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["RAY_ENV_DEFAULTS", "init_ray"]

# Ray Train V2's controller consumes each worker's `ray.train.report` only when it polls, every
# 2 s by default, and a worker blocks until then: with one report per epoch that is ~2 s of idle
# time per epoch (a 30-epoch digits student: 36 s vs 11 s at 0.2 s). Users' own values win.
RAY_ENV_DEFAULTS = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}


def init_ray(**kwargs: Any):
    """`ray.init` (connecting to the job's cluster inside `ray job submit`) with quiet logs.

    The defaults above reach every actor of the job through the runtime environment, and the
    driver's own environment so a local cluster started here inherits them too.
    """
    import ray

    env = {key: os.environ.get(key, value) for key, value in RAY_ENV_DEFAULTS.items()}
    os.environ.update(env)
    runtime_env = dict(kwargs.pop("runtime_env", None) or {})
    runtime_env["env_vars"] = {**env, **runtime_env.get("env_vars", {})}
    kwargs.setdefault("logging_level", logging.WARNING)
    kwargs.setdefault("log_to_driver", False)
    if not ray.is_initialized():
        ray.init(runtime_env=runtime_env, **kwargs)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"
    return ray
