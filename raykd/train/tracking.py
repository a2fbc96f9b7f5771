"""Experiment tracking: each student's per-epoch metrics as a wandb run (offline unless told otherwise).

The driver logs the rows rank 0 reported (the same rows as metrics.csv) while the workers train, so
there is one wandb run per student, with nothing to set up on the workers. Offline mode needs no
key and no network: `wandb sync <dir>` uploads the run later.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["WandbRun"]


class WandbRun:
    """A context manager around `wandb.init` / `log` / `finish` for one student."""

    def __init__(self, directory: str | Path, project: str, name: str, tags: list[str], config: dict[str, Any], mode: str | None) -> None:
        self.directory, self.project, self.name, self.tags, self.config = Path(directory), project, name, tags, config
        # WANDB_MODE in the environment is what lets offline runs skip the API-key check (wandb
        # reads it at init); the config's mode wins, then the environment's, then offline.
        self.mode = mode or os.environ.get("WANDB_MODE") or "offline"
        self._run: Any = None

    def __enter__(self) -> "WandbRun":
        if self.mode == "disabled":
            return self
        import wandb

        os.environ["WANDB_MODE"] = self.mode
        os.environ.setdefault("WANDB_SILENT", "true")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=self.project, name=self.name, tags=self.tags, config=self.config, dir=str(self.directory), mode=self.mode, reinit="create_new"
        )
        return self

    def log(self, row: dict[str, float]) -> None:
        if self._run is not None:
            self._run.log(dict(row), step=int(row["epoch"]))

    @property
    def path(self) -> str | None:
        """The run's local directory (offline: what `wandb sync` takes)."""
        return None if self._run is None else str(Path(self._run.dir).parent)

    def __exit__(self, *exc: object) -> None:
        if self._run is not None:
            self._run.finish(exit_code=1 if exc[0] is not None else 0)
