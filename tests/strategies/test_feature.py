import numpy as np
import pytest
import torch
from torch import nn

from raykd.strategies import FeatureBased

from .helpers import output


def _np(t):
    return t.detach().numpy().astype(np.float64)


def test_plain_l2_without_regressor_matches_numpy():
    s, t = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    loss = FeatureBased(regressor="never", weight=1.0)(
        output(torch.zeros(3, 1), {"a": s}), output(torch.zeros(3, 1), {"b": t})
    )
    assert float(loss) == pytest.approx(((_np(s) - _np(t)) ** 2).mean(), rel=1e-5)


def test_identical_features_give_zero_and_default_weight_is_100():
    f = torch.randn(2, 3, 2, 2)
    strategy = FeatureBased()
    assert strategy.weight == 100.0
    assert float(strategy(output(torch.zeros(2, 1), {"a": f}), output(torch.zeros(2, 1), {"a": f.clone()}))) == 0.0
    assert isinstance(strategy.regressors[0], nn.Identity)  # same shapes: "auto" builds none


def test_larger_student_map_is_pooled_to_the_teacher_size():
    s, t = torch.randn(1, 1, 4, 4), torch.randn(1, 1, 2, 2)
    pooled = _np(s).reshape(1, 1, 2, 2, 2, 2).mean(axis=(3, 5))  # 2x2 block means
    loss = FeatureBased(regressor="never", weight=1.0)(
        output(torch.zeros(1, 1), {"a": s}), output(torch.zeros(1, 1), {"a": t})
    )
    assert float(loss) == pytest.approx(((pooled - _np(t)) ** 2).mean(), rel=1e-5)


def test_linear_regressor_value_and_sum_over_pairs():
    s1, t1 = torch.randn(4, 3), torch.randn(4, 2)
    s2, t2 = torch.randn(4, 2), torch.randn(4, 2)
    strategy = FeatureBased(weight=1.0, student_shapes=[(3,), (2,)], teacher_shapes=[(2,), (2,)])
    reg = strategy.regressors[0]
    assert isinstance(reg, nn.Linear) and isinstance(strategy.regressors[1], nn.Identity)
    w, b = _np(reg.weight), _np(reg.bias)
    expected = ((_np(s1) @ w.T + b - _np(t1)) ** 2).mean() + ((_np(s2) - _np(t2)) ** 2).mean()
    loss = strategy(output(torch.zeros(4, 1), {"x": s1, "y": s2}), output(torch.zeros(4, 1), {"u": t1, "v": t2}))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)


def test_conv_regressor_is_built_from_shapes_or_lazily():
    given = FeatureBased(student_shapes=(3, 4, 4), teacher_shapes=(5, 4, 4))
    assert isinstance(given.regressors[0][0], nn.Conv2d) and given.regressors[0][0].in_channels == 3
    lazy = FeatureBased()
    assert not list(lazy.parameters())
    lazy(
        output(torch.zeros(2, 1), {"a": torch.randn(2, 3, 4, 4)}),
        output(torch.zeros(2, 1), {"a": torch.randn(2, 5, 4, 4)}),
    )
    assert sum(p.numel() for p in lazy.parameters()) == sum(p.numel() for p in given.parameters())


def test_explicit_pairs_and_missing_layer():
    s = output(torch.zeros(2, 1), {"a": torch.ones(2, 2), "b": torch.zeros(2, 2)})
    t = output(torch.zeros(2, 1), {"x": torch.zeros(2, 2), "y": torch.zeros(2, 2)})
    assert float(FeatureBased(pairs=[("b", "x")], weight=1.0)(s, t)) == 0.0
    assert float(FeatureBased(pairs=[("a", "x")], weight=1.0)(s, t)) == 1.0
    with pytest.raises(KeyError, match="no feature named 'c'; this output has \\['a', 'b'\\]"):
        FeatureBased(pairs=[("c", "x")])(s, t)


def test_bad_configuration():
    with pytest.raises(ValueError, match="pairs is empty"):
        FeatureBased(pairs=[])
    with pytest.raises(ValueError, match="regressor must be"):
        FeatureBased(regressor="sometimes")
    with pytest.raises(ValueError, match="give both student_shapes and teacher_shapes"):
        FeatureBased(student_shapes=[(3,)])
    s = output(torch.zeros(2, 1), {"a": torch.zeros(2, 2), "b": torch.zeros(2, 2)})
    t = output(torch.zeros(2, 1), {"x": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="cannot pair features in order"):
        FeatureBased()(s, t)
    with pytest.raises(ValueError, match="regressor='auto' or 'always'"):
        FeatureBased(regressor="never")(output(torch.zeros(2, 1), {"a": torch.zeros(2, 3)}), t)


def test_trainer_workflow_with_feature_extractor_materialize_then_optimise():
    from raykd.outputs import FeatureExtractor

    torch.manual_seed(0)
    teacher = FeatureExtractor(
        nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 16, 3)), ["1"]
    )
    student = FeatureExtractor(
        nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 16, 3)), ["1"]
    )
    x = torch.randn(8, 1, 4, 4)
    strategy = FeatureBased(weight=1.0)
    with torch.no_grad():
        strategy.materialize(student(x), teacher(x))
    optimizer = torch.optim.SGD([*student.parameters(), *strategy.parameters()], lr=0.1)
    losses = []
    for _ in range(20):
        with torch.no_grad():
            t_out = teacher(x)
        loss = strategy(student(x), t_out)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.grad is None for p in teacher.parameters())
