"""Per-epoch metrics of a student run: a CSV written by Ray Train's controller, lines on the driver.

`MetricsLog` is a `ray.train.UserCallback`: it runs in the Train controller (on the driver's node)
and rewrites `metrics.csv` after every report, one row per epoch (a retried epoch replaces its
row). `EpochPrinter` follows that file from a driver thread and prints one line per epoch, so the
lines reach the terminal as they happen and are not folded by Ray's log deduplication.
"""

from __future__ import annotations

import csv
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["MetricsTable", "MetricsLog", "EpochPrinter", "read_metrics", "format_epoch"]

FIRST_COLUMNS = ("epoch", "loss", "distill", "ce", "agreement", "val_accuracy", "val_loss", "val_ece", "val_cosine", "lr", "epoch_seconds")
KNOWN = set(FIRST_COLUMNS)


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = [c for c in FIRST_COLUMNS if any(c in r for r in rows)]
    columns += sorted({k for r in rows for k in r} - set(columns))
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of a metrics.csv as floats (epoch as int)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    for row in rows:
        row["epoch"] = int(row["epoch"])
    return rows


def _user_callback_base() -> type:
    import ray.train

    return ray.train.UserCallback


class MetricsTable:
    """`metrics.csv`: one row per epoch, rewritten whole after each report (a retried epoch
    replaces its row)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # A run resumed from its checkpoints keeps the rows of the epochs it does not repeat.
        self.rows: dict[int, dict[str, Any]] = {int(r["epoch"]): r for r in read_metrics(self.path)}

    def add(self, metrics: dict[str, Any]) -> None:
        row = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        self.rows[int(row["epoch"])] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _write_rows(self.path, [self.rows[e] for e in sorted(self.rows)])


class MetricsLog(_user_callback_base()):  # type: ignore[misc]
    """Rank 0's metrics of each Ray Train report, into a `MetricsTable`."""

    def __init__(self, path: str | Path) -> None:
        self.table = MetricsTable(path)

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint) -> None:
        self.table.add(metrics[0])


def format_epoch(name: str, row: dict[str, float], epochs: int, mean_seconds: float) -> str:
    epoch = int(row["epoch"]) + 1
    parts = [f"{name} epoch {epoch}/{epochs}", f"loss {row['loss']:.4f}"]
    parts += [f"{k} {row[k]:.4f}" for k in ("distill", "ce") if k in row]
    parts += [f"agree {100 * row['agreement']:.1f}%"] if "agreement" in row else []
    parts += [f"val_acc {100 * row['val_accuracy']:.2f}%", f"ece {row['val_ece']:.3f}"] if "val_accuracy" in row else []
    parts += [f"val_cos {row['val_cosine']:.4f}"] if "val_cosine" in row else []
    parts += [f"{k} {row[k]:.3g}" for k in sorted(row) if k not in KNOWN]  # scheduled strategy parameters
    parts += [f"lr {row['lr']:.2e}", f"{row['epoch_seconds']:.2f}s"] if "lr" in row else [f"{row['epoch_seconds']:.2f}s"]
    remaining = (epochs - epoch) * mean_seconds
    parts.append(f"ETA {int(remaining // 60)}m{int(remaining % 60):02d}s")
    return "  ".join(parts)


class EpochPrinter:
    """A driver thread that prints each new row of `path` as it appears and hands it to `on_row`
    (use as a context manager)."""

    def __init__(
        self,
        path: str | Path,
        name: str,
        epochs: int,
        emit: Callable[[str], None] = print,
        interval: float = 0.5,
        on_row: Callable[[dict[str, float]], None] | None = None,
    ) -> None:
        self.path, self.name, self.epochs, self.emit, self.interval = Path(path), name, epochs, emit, interval
        self.on_row = on_row
        # Rows already there belong to a run being resumed: they were printed when they happened.
        self._printed: set[int] = {r["epoch"] for r in read_metrics(self.path)}
        self._new = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._start = time.perf_counter()

    def _flush(self) -> None:
        try:
            rows = read_metrics(self.path)
        except (OSError, ValueError, KeyError):
            return  # a file being replaced; the next poll reads it whole
        for row in rows:
            if row["epoch"] not in self._printed:
                self._printed.add(row["epoch"])
                self._new += 1
                # Wall time per epoch as the driver sees it, so the ETA includes reporting overhead.
                mean = (time.perf_counter() - self._start) / self._new
                self.emit(format_epoch(self.name, row, self.epochs, mean))
                if self.on_row is not None:
                    self.on_row(row)

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            self._flush()

    def __enter__(self) -> "EpochPrinter":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._flush()
