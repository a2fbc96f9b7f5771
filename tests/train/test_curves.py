"""curves.png from a metrics.csv, also when students finish in threads at once (the pseudo-label stage)."""

from __future__ import annotations

import csv
import threading

from PIL import Image

from raykd.train.curves import plot_curves


def test_students_finishing_in_threads_draw_their_curves_at_once(tmp_path):
    metrics = tmp_path / "metrics.csv"
    with open(metrics, "w", newline="") as f:
        writer = csv.DictWriter(f, ["epoch", "loss", "val_loss", "val_accuracy"])
        writer.writeheader()
        writer.writerows({"epoch": e, "loss": 2.3 / (e + 1), "val_loss": 2.0 / (e + 1), "val_accuracy": 0.1 * e} for e in range(5))
    errors: list[BaseException] = []

    def draw(thread: int) -> None:
        try:
            for i in range(5):  # log-scaled loss axes: mathtext tick labels, which matplotlib parses unsafely
                plot_curves(metrics, tmp_path / f"{thread}_{i}.png", f"student {thread}")
        except Exception as err:  # noqa: BLE001 - collected for the assertion below
            errors.append(err)

    threads = [threading.Thread(target=draw, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 20
    with Image.open(pngs[0]) as image:
        assert image.size == (900, 340)
