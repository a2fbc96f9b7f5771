"""A search's pictures: accuracy against temperature per strategy, and the best trials' curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_temperature", "plot_best_curves"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: headless drivers and CI
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, ax, title: str, out_png: str | Path) -> Path:
    ax.legend(fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return Path(out_png)


def plot_temperature(rows: list[dict[str, Any]], metric: str, out_png: str | Path) -> Path:
    """One point per trial: its temperature (the schedule's start; constant schedules are flat)
    against its best `metric`, one colour per strategy; trials without a temperature sit at x=0."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for strategy in sorted({r["strategy"] for r in rows}):
        mine = [r for r in rows if r["strategy"] == strategy]
        ax.scatter([r.get("temperature_start") or 0.0 for r in mine], [100 * r[metric] for r in mine], label=strategy)
    ax.set_xlabel("temperature (schedule start)")
    ax.set_ylabel(f"{metric} (%)")
    return _save(plt, fig, ax, "accuracy against temperature", out_png)


def plot_best_curves(curves: dict[str, list[float]], metric: str, out_png: str | Path) -> Path:
    """`metric` per epoch for each of the best trials (label → values)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1), [100 * v for v in values], marker=".", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} (%)")
    return _save(plt, fig, ax, "best trials", out_png)
