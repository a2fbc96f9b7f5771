"""Born-Again Networks end to end through the shared stages and the one student loop, in-process
on the shared Ray session, on a small slice of digits."""

from __future__ import annotations

import csv
import json

import pytest

from raykd.cli import main
from raykd.soft_targets import list_parts


@pytest.mark.ray
def test_born_again_trains_generations_and_reports_the_ban_ensemble(ray_session, tmp_path):
    out = tmp_path / "run"
    argv = ["born-again", "--generations", "2", "--limit", "300", "--epochs", "2", "--num-workers", "1"]
    argv += ["--temperature", "1", "--alpha", "1", "--output", str(out)]  # BAN: pure distillation
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert {"generations", "students", "seconds", "config", "data", "strategy"} <= set(report)
    rows = report["generations"]
    assert [r["generation"] for r in rows] == [0, 1]
    for row in rows:
        assert {"generation", "accuracy", "ensemble_accuracy"} <= set(row)
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["ensemble_accuracy"] <= 1.0
    # Generation 0's ensemble is generation 0 itself.
    assert rows[0]["ensemble_accuracy"] == pytest.approx(rows[0]["accuracy"])
    assert rows[0]["teacher"] is None and rows[1]["teacher"] == "generation 0 (Self)"
    assert report["config"]["born_again"]["generations"] == 2
    assert {"data", "generation_0", "soft_targets_1", "generation_1", "total"} <= set(report["seconds"])
    for g in range(2):
        with open(out / f"generation_{g}" / "metrics.csv") as f:
            assert len(list(csv.DictReader(f))) == 2  # one row per epoch
        assert (out / f"generation_{g}" / "curves.png").is_file()
        manifest = json.loads((out / f"generation_{g}" / "teacher" / "teachers.json").read_text())
        assert manifest["generation"] == g
    # Generation 1 learnt from generation 0's soft targets (pure distillation by default).
    assert list_parts(out / "generation_1" / "soft_targets")
    assert report["students"][0]["strategy"] is None
    assert report["students"][1]["strategy"] == "ResponseBased"
    assert report["students"][1]["strategy_params"] == {"temperature": 1, "alpha": 1}
    md = (out / "report.md").read_text()
    assert "| generation" in md and "generation_1/curves.png" in md
