"""tutorial.ipynb: the tutorial seed's techniques, one section each, on raykd's own components (no Ray)."""

from __future__ import annotations


def test_tutorial_notebook_executes(run_notebook):
    ran = run_notebook("tutorial.ipynb")
    assert "test accuracy" in ran.text  # teacher and students trained on the digits
    for shown in ("TCKD", "AttentionBased loss", "RKD distance", "CRD loss", "SelfDistillation loss", "Bernoulli KL", "| temperature |"):
        assert shown in ran.text, shown
    # Temperatures, KD loss and gradient vs T, top-k error vs k, attention maps, similarity matrices, schedules, loss ratios.
    assert ran.images >= 7
