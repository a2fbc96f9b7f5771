import numpy as np
import pytest
import torch

from raykd.strategies import ProbabilisticTransfer
from raykd.strategies.probabilistic import cosine_conditional_probabilities

from .helpers import output


def _p(f, exclude_self=False):
    f = f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-7)
    k = (f @ f.T + 1) / 2
    if exclude_self:
        np.fill_diagonal(k, 0.0)
    return k / k.sum(axis=1, keepdims=True)


def test_matches_numpy():
    s, t = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    ps, pt = _p(s.numpy()), _p(t.numpy())
    expected = 30000.0 * (pt * np.log((pt + 1e-7) / (ps + 1e-7))).mean()
    loss = ProbabilisticTransfer()(output(torch.zeros(5, 1), {"e": s}), output(torch.zeros(5, 1), {"e": t}))
    assert float(loss) == pytest.approx(expected, rel=1e-9)


def test_exclude_self_follows_the_paper_formula():
    f = torch.randn(4, 3, dtype=torch.float64)
    p = cosine_conditional_probabilities(f, exclude_self=True).numpy()
    np.testing.assert_allclose(p, _p(f.numpy(), exclude_self=True), rtol=1e-12)
    assert np.allclose(np.diag(p), 0.0) and np.allclose(p.sum(axis=1), 1.0)


def test_identical_gives_zero_and_bad_eps():
    f = torch.randn(4, 3, dtype=torch.float64)
    assert (
        float(ProbabilisticTransfer()(output(torch.zeros(4, 1), {"e": f}), output(torch.zeros(4, 1), {"e": f.clone()})))
        == 0.0
    )
    with pytest.raises(ValueError, match="eps must be > 0"):
        ProbabilisticTransfer(eps=0)
