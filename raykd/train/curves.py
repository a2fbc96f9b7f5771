"""curves.png: a student's per-epoch loss and validation accuracy (or embedding cosine), from its metrics.csv."""

from __future__ import annotations

import threading
from pathlib import Path

from raykd.train.metrics import read_metrics

__all__ = ["plot_curves"]

# Matplotlib is not thread-safe (its mathtext parser shares pyparsing state: two threads drawing
# log-axis tick labels at once raise ParseException), and the pseudo-label stage trains its two
# students in threads.
_DRAWING = threading.Lock()


def plot_curves(metrics_csv: str | Path, out_png: str | Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only: runs on headless workers and CI
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_csv)
    if not rows:
        raise ValueError(f"{metrics_csv} has no epochs to plot")
    epochs = [r["epoch"] + 1 for r in rows]
    accuracy = "val_accuracy" in rows[0]
    scores = [100 * r["val_accuracy"] if accuracy else r["val_cosine"] for r in rows]
    marker = "." if len(rows) < 30 else None
    out_png = Path(out_png)
    with _DRAWING:
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
        for key in ("loss", "distill", "ce", "val_loss"):
            if all(key in r for r in rows):
                left.plot(epochs, [r[key] for r in rows], label=key, marker=marker)
        left.set_xlabel("epoch")
        left.set_ylabel("loss")
        if all(v > 0 for line in left.get_lines() for v in line.get_ydata()):
            left.set_yscale("log")  # a T²-scaled KD loss falls by orders of magnitude
        left.legend()
        right.plot(epochs, scores, color="tab:green", marker=marker)
        right.set_xlabel("epoch")
        right.set_ylabel("val accuracy (%)" if accuracy else "val embedding cosine to the teacher")
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(out_png, dpi=100)
        plt.close(fig)
    return out_png
