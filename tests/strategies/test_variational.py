import numpy as np
import pytest
import torch

from raykd.strategies import VariationalInformation

from .helpers import output


def _relu(x):
    return np.maximum(x, 0)


def test_initial_variance_is_init_pred_var():
    strategy = VariationalInformation(student_shapes=[(3,)], teacher_shapes=[(4,)])
    np.testing.assert_allclose(strategy.heads[0].variance().detach().numpy(), 5.0, rtol=1e-6)


def test_linear_nll_matches_numpy():
    strategy = VariationalInformation(student_shapes=[(3,)], teacher_shapes=[(4,)]).double()
    s, t = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    w = [m.weight.detach().numpy() for m in strategy.heads[0].regressor if isinstance(m, torch.nn.Linear)]
    mean = _relu(_relu(s.numpy() @ w[0].T) @ w[1].T) @ w[2].T
    var = np.log1p(np.exp(strategy.heads[0].log_scale.detach().numpy())) + 1e-5
    expected = (0.5 * ((mean - t.numpy()) ** 2 / var + np.log(var))).mean()
    loss = strategy(output(torch.zeros(5, 1), {"a": s}), output(torch.zeros(5, 1), {"a": t}))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-9)


def test_conv_nll_matches_numpy_with_pooling():
    strategy = VariationalInformation(weight=2.0)
    s, t = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 2, 2, 2, dtype=torch.float64)
    so, to = output(torch.zeros(2, 1), {"a": s}), output(torch.zeros(2, 1), {"a": t})
    strategy.materialize(so, to)
    head = strategy.heads[0]
    with torch.no_grad():
        head.log_scale.copy_(torch.tensor([0.3, -1.0], dtype=torch.float64))
    w = [m.weight.detach().numpy()[:, :, 0, 0] for m in head.regressor if isinstance(m, torch.nn.Conv2d)]
    sp = s.numpy().reshape(2, 3, 2, 2, 2, 2).mean(axis=(3, 5))
    x = np.moveaxis(sp, 1, -1)  # (B, H, W, C): 1x1 convs are matrix products over C
    mean = np.moveaxis(_relu(_relu(x @ w[0].T) @ w[1].T) @ w[2].T, -1, 1)
    var = (np.log1p(np.exp(np.array([0.3, -1.0]))) + 1e-5).reshape(1, 2, 1, 1)
    expected = 2.0 * (0.5 * ((mean - t.numpy()) ** 2 / var + np.log(var))).mean()
    assert float(strategy(so, to).detach()) == pytest.approx(expected, rel=1e-9)


def test_errors():
    with pytest.raises(ValueError, match="init_pred_var must be > eps"):
        VariationalInformation(init_pred_var=0.0)
    with pytest.raises(ValueError, match="student_shapes has 2 entries but teacher_shapes 1"):
        VariationalInformation(student_shapes=[(3,), (3,)], teacher_shapes=[(3,)])
