"""Starting or joining Ray with raykd's defaults: worker output on the driver, Ray's chatter off it."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, Callable

__all__ = ["RAY_ENV_DEFAULTS", "NOISE", "init_ray", "progress_bars_enabled", "is_noise"]

# Ray Train V2's controller consumes each worker's `ray.train.report` only when it polls, every
# 2 s by default, and a worker blocks until then: with one report per epoch that is ~2 s of idle
# time per epoch (a 30-epoch digits student: 36 s vs 11 s at 0.2 s). Users' own values win.
RAY_ENV_DEFAULTS = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
    # Ray Data's INFO lines ("Starting execution of Dataset ...", "Execution plan ...",
    # "Dataset ... execution finished") from every process that runs a dataset.
    "RAY_DATA_LOG_LEVEL": "WARNING",
}

# Ray 2.60's Train V2 export of every run's DataConfig reads the deprecated
# `ExecutionOptions.exclude_resources` itself (ray/train/v2/_internal/state/util.py), so each
# trainer with datasets warns in its DatasetManager actor whatever the user passes. Filtered by
# its exact message in the job's worker processes; a user's PYTHONWARNINGS is applied after it.
_WORKER_WARNING_FILTERS = ("ignore:`ExecutionOptions.exclude_resources` is deprecated",)

# Lines that Ray's worker processes print and that say nothing about the user's job; the driver
# drops exactly these from the forwarded worker output (everything else, errors and prints of
# tasks and actors included, reaches the terminal).
NOISE = (
    # core_worker.cc ERROR logged once per process whenever a restartable actor (max_restarts
    # != 0) gets ObjectRefs or actor handles as constructor arguments (ray-project/ray#53727).
    # Ray itself does that on every job: Ray Data's actor pools always pass their DataContext and
    # map function as ObjectRefs with max_restarts=-1, and Ray Train's PreemptionWatcher gets the
    # worker actors' handles. Not an error of the job: Ray keeps both referenced while it runs.
    "has constructor arguments in the object store and max_restarts > 0",
    # raykd turns Ray Data's progress bars off where the output is not a terminal; Ray Data then
    # says so once per process at WARNING level.
    "Progress bars disabled. To enable, set `ray.data.DataContext.get_current().enable_progress_bars = True`",
)


def progress_bars_enabled(stream: Any = None) -> bool:
    """Ray Data's progress bars only where `stream` (default: stdout) is a terminal; pipes, files
    and CI logs get raykd's own plain lines instead."""
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def is_noise(line: str) -> bool:
    return any(pattern in line for pattern in NOISE)


def _filtered(handler: Callable[[dict], None]) -> Callable[[dict], None]:
    def print_worker_lines(data: dict) -> None:
        lines = data.get("lines")
        if lines:
            kept = [line for line in lines if not is_noise(line)]
            if not kept:
                return
            if len(kept) != len(lines):
                data = {**data, "lines": kept}
        handler(data)

    print_worker_lines._raykd_filtered = True  # type: ignore[attr-defined]
    return print_worker_lines


def _filter_worker_output() -> None:
    """Wraps Ray's printer of forwarded worker output (`log_to_driver`) with `is_noise`."""
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:  # another Ray layout: print everything rather than fail
        return
    with dispatcher._lock:
        dispatcher.handlers = [
            (name, _filtered(handler) if name == "ray_print_logs" and not hasattr(handler, "_raykd_filtered") else handler)
            for name, handler in dispatcher.handlers
        ]


def _absorb_driver_actor_warning(ray) -> None:
    """The driver's own copy of the `NOISE[0]` line comes from C++ straight to file descriptor 2,
    once per process. Trigger it here, with fd 2 pointed at /dev/null for that one call, so the
    first actor pool of the job does not print it; the actor is never scheduled (it asks for a
    resource no node has) and is killed at once."""

    @ray.remote(num_cpus=0, resources={"raykd-never-scheduled": 1}, max_restarts=1)
    class _AbsorbActorRestartWarning:
        def __init__(self, ref) -> None:
            pass

    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):
        fd = 2
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
            actor = _AbsorbActorRestartWarning.remote(ray.put(None))
        finally:
            os.dup2(saved, fd)
            os.close(devnull)
    finally:
        os.close(saved)
    ray.kill(actor, no_restart=True)


def init_ray(progress: str = "auto", **kwargs: Any):
    """`ray.init` (connecting to the job's cluster inside `ray job submit`) with raykd's output.

    - Prints and errors of tasks and actors reach the driver (`log_to_driver=True`); Ray's own
      INFO lines stay in the session's log files (`logging_level=WARNING` on the driver,
      `RAY_DATA_LOG_LEVEL=WARNING` everywhere), and the `NOISE` lines are dropped.
    - Ray Data's progress bars: `progress="auto"` shows them when stdout is a terminal; "on" and
      "off" force them (`tracking.progress` in a run's config).

    The defaults in `RAY_ENV_DEFAULTS` reach every actor of the job through the runtime
    environment, and the driver's own environment so a local cluster started here inherits them.
    """
    import ray

    env = {key: os.environ.get(key, value) for key, value in RAY_ENV_DEFAULTS.items()}
    os.environ.update(env)
    runtime_env = dict(kwargs.pop("runtime_env", None) or {})
    user_env = dict(runtime_env.get("env_vars", {}))
    warnings_filters = [*_WORKER_WARNING_FILTERS, user_env.get("PYTHONWARNINGS", os.environ.get("PYTHONWARNINGS", ""))]
    env["PYTHONWARNINGS"] = ",".join(f for f in warnings_filters if f)
    env_vars = {**env, **{k: v for k, v in user_env.items() if k != "PYTHONWARNINGS"}}
    # Inside `ray job submit`, ray.init refuses a variable that the job's runtime_env sets too;
    # the job's value reaches every worker of the job already.
    submitted = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}")).get("runtime_env") or {}
    runtime_env["env_vars"] = {k: v for k, v in env_vars.items() if k not in (submitted.get("env_vars") or {})}
    kwargs.setdefault("logging_level", logging.WARNING)
    kwargs.setdefault("log_to_driver", True)
    started = False
    if not ray.is_initialized():
        ray.init(runtime_env=runtime_env, **kwargs)
        started = True
    _filter_worker_output()
    if started:
        try:
            _absorb_driver_actor_warning(ray)
        except Exception:  # only cosmetics: never fail a run over it
            logging.getLogger(__name__).debug("could not absorb the actor-restart warning", exc_info=True)
    if progress not in ("auto", "on", "off"):
        raise ValueError(f"tracking.progress must be auto, on or off, got {progress!r}")
    ray.data.DataContext.get_current().enable_progress_bars = progress == "on" or (progress == "auto" and progress_bars_enabled())
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # ray.data may be imported before the env var
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"
    return ray
