import numpy as np
import pytest
import torch
from torch import nn

from raykd.strategies import DetectionDistillation

from .helpers import leaf, output


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _huber(x):
    a = np.abs(x)
    return np.where(a < 1, 0.5 * x**2, a - 0.5)


def test_three_terms_match_numpy():
    s_cls, t_cls = leaf(2, 5, 3, seed=0), leaf(2, 5, 3, seed=1)
    s_box, t_box = leaf(2, 5, 4, seed=2), leaf(2, 5, 4, seed=3)
    s_p3, t_p3 = leaf(2, 3, 4, 4, seed=4), leaf(2, 3, 4, 4, seed=5)
    mask = torch.tensor([[1, 0, 0, 1, 1], [0, 0, 1, 0, 0]])
    strategy = DetectionDistillation(temperature=2.0, cls_weight=0.5, box_weight=2.0, feature_weight=3.0)
    loss = strategy(
        output(s_cls, {"p3": s_p3, "boxes": s_box}), output(t_cls, {"p3": t_p3, "boxes": t_box}), box_mask=mask
    )
    assert isinstance(strategy.adapters[0], nn.Identity)

    s, t, T = s_cls.detach().numpy(), t_cls.detach().numpy(), 2.0
    ps, pt = _sig(s / T), _sig(t / T)
    cls = (pt * np.log(pt / ps) + (1 - pt) * np.log((1 - pt) / (1 - ps))).mean() * T**2
    m = mask.numpy().astype(bool)
    box = _huber(s_box.detach().numpy() - t_box.detach().numpy())[m].sum() / (m.sum() * 4)
    fs, ft = s_p3.detach().numpy(), t_p3.detach().numpy()
    imp = np.abs(ft).mean(axis=1, keepdims=True)
    imp = imp / imp.reshape(2, -1).max(axis=1).reshape(2, 1, 1, 1)
    feat = (((fs - ft) ** 2) * imp).sum() / (3 * imp.sum())
    assert float(loss.detach()) == pytest.approx(0.5 * cls + 2.0 * box + 3.0 * feat, rel=1e-9)


def test_default_box_mask_comes_from_teacher_confidence():
    t_cls = torch.tensor([[[4.0, -4.0], [-4.0, -4.0]]], dtype=torch.float64)  # anchor 0 confident, anchor 1 not
    s_box, t_box = (
        torch.zeros(1, 2, 4, dtype=torch.float64),
        torch.tensor([[[0.5] * 4, [9.0] * 4]], dtype=torch.float64),
    )
    strategy = DetectionDistillation(cls_weight=0.0, feature_weight=0.0)
    loss = strategy(output(t_cls.clone(), {"boxes": s_box}), output(t_cls, {"boxes": t_box}))
    assert float(loss) == pytest.approx(0.5 * 0.5**2, rel=1e-9)  # only anchor 0, Huber in its quadratic part


def test_identical_outputs_give_zero_and_adapters_for_other_widths():
    cls, p3, boxes = torch.randn(1, 3, 2), torch.randn(1, 4, 2, 2), torch.randn(1, 3, 4)
    s = output(cls, {"p3": p3, "boxes": boxes})
    assert float(
        DetectionDistillation()(s, output(cls.clone(), {"p3": p3.clone(), "boxes": boxes.clone()}))
    ) == pytest.approx(0, abs=1e-6)
    strategy = DetectionDistillation()
    strategy.materialize(s, output(cls, {"p3": torch.randn(1, 8, 2, 2), "boxes": boxes}))
    assert isinstance(strategy.adapters[0], nn.Conv2d) and strategy.adapters[0].out_channels == 8


def test_errors():
    with pytest.raises(ValueError, match=r"score_threshold must be in \[0, 1\]"):
        DetectionDistillation(score_threshold=2)
    s = output(torch.zeros(1, 3, 2), {"boxes": torch.zeros(1, 3, 4)})
    with pytest.raises(ValueError, match="box_mask must have shape"):
        DetectionDistillation(feature_weight=0.0)(s, s, box_mask=torch.ones(1, 4))
    with pytest.raises(ValueError, match="FPN features"):
        DetectionDistillation()(s, s)
    with pytest.raises(KeyError, match="no feature named 'boxes'"):
        DetectionDistillation(feature_weight=0.0)(output(torch.zeros(1, 3, 2)), output(torch.zeros(1, 3, 2)))
