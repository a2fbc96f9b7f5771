import math

import pytest
import torch

from raykd.strategies import ResponseBased

from .helpers import output


def test_matches_a_hand_computed_value():
    # One sample, two classes: s = [1, 0], t = [0, 1], T = 2, alpha = 0.5, label 0.
    T, alpha = 2.0, 0.5
    ps = [math.exp(0.5) / (math.exp(0.5) + 1.0), 1.0 / (math.exp(0.5) + 1.0)]
    pt = [1.0 / (1.0 + math.exp(0.5)), math.exp(0.5) / (1.0 + math.exp(0.5))]
    kl = sum(q * math.log(q / p) for q, p in zip(pt, ps))
    ce = -math.log(math.exp(1.0) / (math.exp(1.0) + 1.0))
    expected = alpha * T**2 * kl + (1 - alpha) * ce  # ≈ 0.40155
    s, t = output(torch.tensor([[1.0, 0.0]])), output(torch.tensor([[0.0, 1.0]]))
    loss = ResponseBased(temperature=T, alpha=alpha)(s, t, torch.tensor([0]))
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.40155, abs=1e-5)


def test_identical_logits_without_labels_give_zero():
    logits = torch.randn(3, 4, dtype=torch.float64)
    assert float(ResponseBased()(output(logits), output(logits.clone()))) == pytest.approx(0.0, abs=1e-12)


def test_teacher_topk_minus_inf_is_fine():
    s, t = output(torch.tensor([[0.3, 0.1, -0.2]])), output(torch.tensor([[2.0, 1.0, float("-inf")]]))
    p_s = torch.softmax(torch.tensor([0.3, 0.1, -0.2]) / 4, 0)
    p_t = torch.softmax(torch.tensor([2.0, 1.0]) / 4, 0)
    expected = 16 * float((p_t * (p_t.log() - p_s[:2].log())).sum())
    assert float(ResponseBased(alpha=1.0)(s, t)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"temperature": 0.0}, "temperature must be > 0"), ({"alpha": 1.5}, r"alpha must be in \[0, 1\], got 1.5")],
)
def test_invalid_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResponseBased(**kwargs)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        ResponseBased()(output(torch.zeros(2, 3)), output(torch.zeros(2, 4)))
