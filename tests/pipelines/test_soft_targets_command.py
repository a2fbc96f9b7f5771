"""`raykd soft-targets`: the teacher's targets alone, resumable, reused by a later run's students."""

from __future__ import annotations

import pytest

from raykd.cli import main
from raykd.soft_targets import read_ids

pytestmark = pytest.mark.ray


def test_soft_targets_then_a_rerun_with_the_same_teachers_writes_nothing_new(ray_session, tmp_path, capsys):
    out = tmp_path / "targets"
    assert main(["soft-targets", "--limit", "300", "--teacher-epochs", "2", "--k", "3", "--output", str(out)]) == 0
    first = capsys.readouterr().out
    assert "[raykd] soft_targets: done in" in first and "new_rows" in first
    ids = read_ids(out / "soft_targets")
    assert len(ids) == len(set(ids.tolist())) > 0
    assert not (out / "student_kd").exists()  # no student in this command

    assert main(["soft-targets", "--limit", "300", "--k", "3", "--teachers", str(out / "teachers"), "--output", str(out)]) == 0
    assert f"rows {len(ids)}, new_rows 0" in capsys.readouterr().out
