"""Adaptive: classes (or samples) the student gets wrong weigh more."""

from __future__ import annotations

import pytest
import torch

from raykd.models import MLP
from raykd.teachers import AdaptiveTeacher, NeuralNetworkTeacher

from .conftest import toy_problem


def teacher():
    torch.manual_seed(0)
    return NeuralNetworkTeacher(MLP(8, [16], 4))


def test_weak_classes_get_larger_weight_on_a_toy_student(trained_mlp):
    """A student that never learnt class 3 (its logit is pinned low) → class 3 weighs most."""
    x, y = toy_problem(400, seed=123)
    adaptive = AdaptiveTeacher(NeuralNetworkTeacher(trained_mlp))
    with torch.no_grad():
        student_logits = trained_mlp(x).clone()
    student_logits[:, 3] = -1e4  # the student cannot predict class 3
    for start in range(0, 400, 100):  # one epoch in batches
        adaptive.observe(student_logits[start : start + 100], y[start : start + 100])
    summary = adaptive.end_epoch()
    w = adaptive.class_weight
    assert int(w.argmax()) == 3
    assert w[3] > 2 * w[:3].max()
    assert w.mean().item() == pytest.approx(1.0)
    assert summary["max_weight"] == pytest.approx(float(w[3]))
    out = adaptive.predict(x[:8], labels=y[:8])
    torch.testing.assert_close(out.sample_weight, w[y[:8]])
    assert "sample_weight" not in out.features  # kept out of the features unless asked


def test_weights_move_with_momentum_as_the_student_improves():
    adaptive = AdaptiveTeacher(teacher(), momentum=0.5)
    labels = torch.tensor([0, 1, 2, 3] * 5)
    wrong_on_1 = torch.nn.functional.one_hot(labels, 4).float() * 5
    wrong_on_1[labels == 1] = torch.tensor([5.0, 0, 0, 0])
    adaptive.update(wrong_on_1, labels)
    first = adaptive.class_weight[1].item()
    right = torch.nn.functional.one_hot(labels, 4).float() * 5
    adaptive.update(right, labels)
    assert 1.0 < adaptive.class_weight[1].item() < first  # error halves with momentum 0.5


def test_per_sample_weights_by_id_and_feature_option():
    adaptive = AdaptiveTeacher(teacher(), mode="per_sample", num_samples=6, weight_feature=True)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    logits = torch.nn.functional.one_hot(labels, 4).float() * 4
    logits[2] = torch.tensor([4.0, 0, 0, 0])  # sample 2 is wrong
    adaptive.update(logits, labels, indices=torch.arange(6))
    assert int(adaptive.sample_weight.argmax()) == 2
    out = adaptive.predict(torch.randn(3, 8), indices=torch.tensor([2, 0, 1]))
    assert out.features["sample_weight"][0] == adaptive.sample_weight.max()


def test_bad_params():
    with pytest.raises(ValueError, match="num_samples"):
        AdaptiveTeacher(teacher(), mode="per_sample")
    with pytest.raises(ValueError, match="mode must be one of"):
        AdaptiveTeacher(teacher(), mode="focal")
