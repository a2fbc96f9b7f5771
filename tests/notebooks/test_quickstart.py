"""quickstart.ipynb: the stages on a local Ray, then teacher vs student."""

from __future__ import annotations


def test_quickstart_notebook_executes(run_notebook):
    ran = run_notebook("quickstart.ipynb")
    assert "student test accuracy" in ran.text
    assert "student KD (ResponseBased)" in ran.text and "student labels-only" in ran.text  # the teacher-vs-student table
    # Teacher vs student bars, the learning curves from metrics.csv, and the stage's curves.png.
    assert ran.images >= 3
