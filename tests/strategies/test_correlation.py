import math

import numpy as np
import pytest
import torch

from raykd.strategies import CorrelationCongruence
from raykd.strategies.correlation import correlation_matrix

from .helpers import output


def _corr(f, gamma=0.4, order=2):
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    d = f @ f.T
    return sum(math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) * d**p for p in range(order + 1))


def test_matches_numpy():
    s, t = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    expected = 0.02 * ((_corr(t.numpy()) - _corr(s.numpy())) ** 2).sum() / 16
    loss = CorrelationCongruence()(output(torch.zeros(4, 1), {"e": s}), output(torch.zeros(4, 1), {"e": t}))
    assert float(loss) == pytest.approx(expected, rel=1e-9)


def test_taylor_kernel_approaches_the_gaussian_rbf():
    f = torch.randn(4, 3, dtype=torch.float64)
    u = f / f.norm(dim=1, keepdim=True)
    exact = torch.exp(-0.4 * torch.cdist(u, u) ** 2)
    np.testing.assert_allclose(correlation_matrix(f, order=12).numpy(), exact.numpy(), atol=1e-9)


def test_identical_gives_zero_and_embedding_option_builds_lazily():
    f = torch.randn(4, 3, dtype=torch.float64)
    assert (
        float(CorrelationCongruence()(output(torch.zeros(4, 1), {"e": f}), output(torch.zeros(4, 1), {"e": f.clone()})))
        == 0.0
    )
    strategy = CorrelationCongruence(feat_dim=2)
    strategy.materialize(
        output(torch.zeros(4, 1), {"e": f}), output(torch.zeros(4, 1), {"e": torch.randn(4, 5, dtype=torch.float64)})
    )
    assert sorted(tuple(p.shape) for p in strategy.parameters()) == [(2,), (2,), (2, 3), (2, 5)]


def test_errors():
    with pytest.raises(ValueError, match="kernel must be"):
        CorrelationCongruence(kernel="poly")
    with pytest.raises(ValueError, match="gamma must be > 0"):
        CorrelationCongruence(gamma=0)
