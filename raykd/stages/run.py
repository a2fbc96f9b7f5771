"""A run: its directory, its config on disk, Ray, and one line when each stage starts and ends.

The run directory is a local path or a URI (`raykd.storage`). What workers read or write (teacher
weights, soft targets, checkpoints) goes there directly; the driver's own files (config, reports,
metrics, curves, wandb) are written to `Run.out`, which for a URI is a local staging folder copied
to the URI after every stage, so the URI ends complete.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml

from raykd import storage
from raykd.config import RunConfig
from raykd.report import write_report

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
    """Where the driver writes its files: the run directory, or the staging folder of a URI run."""
    location: str = ""
    """The run directory as a path or URI (default: `out`); `at` names places in it."""
    seconds: dict[str, float] = field(default_factory=dict)
    _start: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.location = self.location or str(self.out)

    def at(self, *parts: str) -> str:
        """A place in the run directory that workers reach: a path, or a URI for a URI run."""
        return storage.join(self.location, *parts)

    def where(self, path: str | Path) -> str:
        """Where a driver file written under `out` ends up (after `publish`)."""
        return self.at(*Path(path).resolve().relative_to(self.out.resolve()).parts)

    def publish(self) -> None:
        """Copies the driver's files to a URI run directory (nothing to do for a local one)."""
        storage.publish(self.out, self.location)

    def report(self, report: dict[str, Any], title: str, table: str, images: Sequence[str] = ()) -> None:
        """The run's report.json and report.md (`raykd.report.write_report`) in the run directory;
        prints the table and where the report is."""
        json_path, md_path = write_report(self.out, report, title, table, images)
        self.publish()
        print("\n" + table, flush=True)
        say(f"report: {self.where(json_path)}  {self.where(md_path)}")

    @contextmanager
    def stage(self, name: str, what: str = "") -> Iterator[dict[str, Any]]:
        """Times a stage and prints its start and end; the body fills the dict with what to report."""
        say(f"{name}: start{f' ({what})' if what else ''}")
        start = time.perf_counter()
        summary: dict[str, Any] = {}
        yield summary
        self.publish()
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

    location = str(out or cfg.output or Path("runs") / time.strftime(f"{name}-%Y%m%d-%H%M%S"))
    if storage.is_uri(location):
        path = storage.staging_dir(location)
        say(f"{name}: run directory {location} (the driver's files are staged in {path} and copied there after each stage)")
    else:
        path = Path(location).resolve()
        location = str(path)
        say(f"{name}: run directory {path}")
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    # Inside `ray job submit` this joins the job's cluster; elsewhere it starts a local one. A
    # driver joining a running cluster hands its storage settings to the job's workers.
    init_ray(progress=cfg.tracking.progress, runtime_env={"env_vars": storage.worker_env()} if storage.is_uri(location) else None)
    _check_resources(cfg)
    run = Run(cfg, path, location)
    run.publish()
    return run
