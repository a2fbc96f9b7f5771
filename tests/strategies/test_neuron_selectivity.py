import numpy as np
import pytest
import torch

from raykd.strategies import NeuronSelectivity

from .helpers import output


def _mmd(s, t):
    total = 0.0
    for b in range(s.shape[0]):
        fs = s[b].reshape(s.shape[1], -1)
        ft = t[b].reshape(t.shape[1], -1)
        fs = fs / np.linalg.norm(fs, axis=1, keepdims=True)
        ft = ft / np.linalg.norm(ft, axis=1, keepdims=True)
        k = lambda x, y: np.mean([(xi @ yj) ** 2 for xi in x for yj in y])  # noqa: E731
        total += k(ft, ft) + k(fs, fs) - 2 * k(fs, ft)
    return total / s.shape[0]


def test_matches_loops_and_sums_pairs():
    s1, t1 = torch.randn(2, 3, 2, 2, dtype=torch.float64), torch.randn(2, 5, 4, 4, dtype=torch.float64)
    s2, t2 = torch.randn(2, 2, 3, 3, dtype=torch.float64), torch.randn(2, 4, 3, 3, dtype=torch.float64)
    t1p = t1.numpy().reshape(2, 5, 2, 2, 2, 2).mean(axis=(3, 5))
    expected = 50.0 * (_mmd(s1.numpy(), t1p) + _mmd(s2.numpy(), t2.numpy()))
    loss = NeuronSelectivity()(
        output(torch.zeros(2, 1), {"a": s1, "b": s2}), output(torch.zeros(2, 1), {"a": t1, "b": t2})
    )
    assert float(loss) == pytest.approx(expected, rel=1e-9)


def test_identical_gives_zero_and_errors():
    f = torch.randn(2, 3, 2, 2, dtype=torch.float64)
    assert float(
        NeuronSelectivity()(output(torch.zeros(2, 1), {"a": f}), output(torch.zeros(2, 1), {"a": f.clone()}))
    ) == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="degree must be an integer >= 1"):
        NeuronSelectivity(degree=0)
    flat = output(torch.zeros(2, 1), {"a": torch.randn(2, 3)})
    with pytest.raises(ValueError, match="must have 4 dimensions"):
        NeuronSelectivity()(flat, flat)
