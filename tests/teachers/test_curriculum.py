"""Curriculum: easy (confident) samples first, then more data by the pacing schedule."""

from __future__ import annotations

import pytest

from raykd.teachers import CurriculumTeacher, NeuralNetworkTeacher, build_from_config, pacing_fraction

from .conftest import toy_problem


@pytest.mark.parametrize("pacing", ["linear", "root", "step"])
def test_pacing_grows_to_all_data(pacing):
    fractions = [pacing_fraction(e, pacing, 0.2, full_at_epoch=4) for e in range(7)]
    assert fractions[0] == pytest.approx(0.2)
    assert all(a <= b for a, b in zip(fractions, fractions[1:]))
    assert fractions[4] == pytest.approx(1.0) and fractions[6] == 1.0


def test_root_pacing_is_ahead_of_linear():
    assert pacing_fraction(1, "root", 0.2, 4) > pacing_fraction(1, "linear", 0.2, 4)


def test_early_epochs_hold_the_confident_samples(checkpoint_dir):
    curriculum = build_from_config(
        {"kind": "Curriculum", "checkpoint": str(checkpoint_dir), "score": "confidence", "start_fraction": 0.25,
         "full_at_epoch": 3, "batch_size": 100}
    )
    x, y = toy_problem(400, seed=7, noise=1.5)
    order = curriculum.order(x)
    assert sorted(order.tolist()) == list(range(400))
    confidence = curriculum.teacher.predict(x).logits.softmax(-1).max(-1).values
    first = curriculum.subset(0)
    assert len(first) == 100
    assert confidence[first].min() >= confidence.quantile(0.74)  # the top quarter by confidence
    teacher_right = curriculum.teacher.predict(x).logits.argmax(-1) == y
    assert teacher_right[first].float().mean() > teacher_right.float().mean()  # easy means mostly right
    sizes = [len(curriculum.subset(e)) for e in range(5)]
    assert sizes == sorted(sizes) and sizes[3] == 400


def test_loss_scoring_needs_labels_and_reports_difficulty(trained_mlp):
    curriculum = CurriculumTeacher(NeuralNetworkTeacher(trained_mlp), score="loss")
    x, y = toy_problem(50, seed=2)
    with pytest.raises(ValueError, match="needs labels"):
        curriculum.order(x)
    with pytest.raises(RuntimeError, match="order"):
        curriculum.subset(0)
    order = curriculum.order(x, y)
    out = curriculum.predict(x, labels=y)
    assert out.difficulty[order[0]] == out.difficulty.min()
