"""A run: its directory, its config on disk, Ray, and one line when each stage starts and ends."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from raykd.config import RunConfig

__all__ = ["Run", "RunError", "open_run", "say"]


class RunError(RuntimeError):
    """A problem with the run's inputs or cluster that the user can fix; the message says how."""


def say(message: str) -> None:
    sys.stdout.write(f"[raykd] {message}\n")  # one write: lines of threads never interleave
    sys.stdout.flush()


@dataclass
class Run:
    cfg: RunConfig
    out: Path
    seconds: dict[str, float] = field(default_factory=dict)
    _start: float = field(default_factory=time.perf_counter)

    @contextmanager
    def stage(self, name: str, what: str = "") -> Iterator[dict[str, Any]]:
        """Times a stage and prints its start and end; the body fills the dict with what to report."""
        say(f"{name}: start{f' ({what})' if what else ''}")
        start = time.perf_counter()
        summary: dict[str, Any] = {}
        yield summary
        self.seconds[name] = round(time.perf_counter() - start, 2)
        details = ", ".join(f"{k} {v}" for k, v in summary.items())
        say(f"{name}: done in {self.seconds[name]:.1f}s{f' — {details}' if details else ''}")

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.perf_counter() - self._start, 2)}


def _check_resources(cfg: RunConfig) -> None:
    """Fail at once when the run asks for GPUs the cluster does not have (Ray would wait forever)."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    wanted = {"student.use_gpu (--use-gpu)": 1.0 if cfg.student.use_gpu else 0.0, "soft_targets.num_gpus (--teacher-gpus)": cfg.soft_targets.num_gpus}
    for where, need in wanted.items():
        if need > gpus:
            raise RunError(
                f"{where} asks for {need:g} GPU(s) but the Ray cluster has {gpus:g}; "
                "drop the option, or run on a cluster with GPU nodes"
            )


def open_run(cfg: RunConfig, name: str, out: str | Path | None = None) -> Run:
    """Makes the run directory (cfg.output or runs/<name>-<time>), writes config.yaml there, joins
    or starts Ray, and checks the cluster has what the config asks for."""
    from raykd.runtime import init_ray

    path = Path(out or cfg.output or Path("runs") / time.strftime(f"{name}-%Y%m%d-%H%M%S")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    say(f"{name}: run directory {path}")
    # Inside `ray job submit` this joins the job's cluster; elsewhere it starts a local one.
    init_ray(progress=cfg.tracking.progress)
    _check_resources(cfg)
    return Run(cfg, path)
