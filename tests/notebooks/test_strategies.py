"""strategies.ipynb: one teacher and its soft targets, then a student per strategy, compared in a table and plots."""

from __future__ import annotations


def test_strategies_notebook_executes(run_notebook):
    ran = run_notebook("strategies.ipynb")
    # The results table: a row per strategy, each with where its teacher signal came from.
    assert "ResponseBased" in ran.text and "AttentionBased" in ran.text
    assert "stored soft targets" in ran.text and "teacher in the workers" in ran.text
    assert "ResponseBased: done in" in ran.text  # each student's closing stage line
    # Accuracy and seconds-per-epoch bars, learning curves from metrics.csv.
    assert ran.images >= 2
    assert "| strategy | test accuracy (mean ± std)" in ran.text  # the benchmark's measured table
