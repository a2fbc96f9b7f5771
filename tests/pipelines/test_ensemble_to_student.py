"""The main job end to end, in-process on the shared Ray session, on a small slice of digits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import ensemble_to_student as pipeline

pytestmark = pytest.mark.ray


def test_pipeline_writes_a_complete_report(ray_session, tmp_path):
    out = tmp_path / "run"
    report = pipeline.run(
        pipeline.parse_args(
            ["--limit", "400", "--teacher-epochs", "5", "--epochs", "3", "--k", "4", "--num-workers", "2", "--output", str(out)]
        )
    )
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["student"]["kd"]["accuracy"] == report["student"]["kd"]["accuracy"]
    assert len(on_disk["teachers"]) == 3
    assert all({"name", "params", "accuracy"} <= set(t) for t in on_disk["teachers"])
    for key in ("accuracy", "params"):
        assert key in on_disk["ensemble"]
    assert 0.0 <= on_disk["student"]["kd"]["accuracy"] <= 1.0
    assert 0.0 <= on_disk["student"]["baseline"]["accuracy"] <= 1.0
    assert on_disk["student"]["params"] * 10 <= on_disk["ensemble"]["params"]
    assert on_disk["soft_targets"]["rows"] == on_disk["data"]["train"]
    assert on_disk["soft_targets"]["k"] == 4
    assert Path(on_disk["soft_targets"]["path"]).is_dir()
    assert {"data", "teachers", "soft_targets", "student_kd", "student_baseline", "total"} <= set(on_disk["seconds"])
    assert Path(on_disk["student"]["kd"]["checkpoint"], "model.safetensors").is_file()
    assert "| student KD (ResponseBased)" in (out / "report.md").read_text()
    # The saved teachers load back as a checkpoint for the next run.
    assert (out / "teachers" / "teachers.json").is_file()
