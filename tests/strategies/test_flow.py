import numpy as np
import pytest
import torch

from raykd.strategies import FlowBased
from raykd.strategies.flow import fsp_matrix

from .helpers import output


def _fsp(a, b):
    bsz, c1, h, w = a.shape
    g = np.zeros((bsz, c1, b.shape[1]))
    for n in range(bsz):
        for i in range(c1):
            for j in range(b.shape[1]):
                g[n, i, j] = (a[n, i] * b[n, j]).sum() / (h * w)
    return g


def test_fsp_matrix_matches_loops():
    a, b = torch.randn(2, 3, 2, 2, dtype=torch.float64), torch.randn(2, 4, 2, 2, dtype=torch.float64)
    np.testing.assert_allclose(fsp_matrix(a, b).numpy(), _fsp(a.numpy(), b.numpy()), rtol=1e-12)


def test_loss_matches_numpy_with_pooling():
    s1, s2, s3 = (torch.randn(2, c, 2, 2, dtype=torch.float64) for c in (2, 3, 2))
    t1 = torch.randn(2, 2, 4, 4, dtype=torch.float64)
    t2, t3 = torch.randn(2, 3, 2, 2, dtype=torch.float64), torch.randn(2, 2, 2, 2, dtype=torch.float64)
    t1p = t1.numpy().reshape(2, 2, 2, 2, 2, 2).mean(axis=(3, 5))
    expected = ((_fsp(s1.numpy(), s2.numpy()) - _fsp(t1p, t2.numpy())) ** 2).mean() + (
        (_fsp(s2.numpy(), s3.numpy()) - _fsp(t2.numpy(), t3.numpy())) ** 2
    ).mean()
    s = output(torch.zeros(2, 1), {"a": s1, "b": s2, "c": s3})
    t = output(torch.zeros(2, 1), {"a": t1, "b": t2, "c": t3})
    assert float(FlowBased()(s, t)) == pytest.approx(50.0 * expected, rel=1e-9)
    assert float(FlowBased()(s, output(torch.zeros(2, 1), {k: v.clone() for k, v in s.features.items()}))) == 0.0


def test_errors():
    with pytest.raises(ValueError, match="at least 2 layer pairs"):
        FlowBased(pairs=[("a", "a")])
    one = output(torch.zeros(2, 1), {"a": torch.randn(2, 2, 2, 2)})
    with pytest.raises(ValueError, match="at least 2 layer pairs"):
        FlowBased()(one, one)
    s = output(torch.zeros(2, 1), {"a": torch.randn(2, 2, 2, 2), "b": torch.randn(2, 3, 2, 2)})
    t = output(torch.zeros(2, 1), {"a": torch.randn(2, 2, 2, 2), "b": torch.randn(2, 4, 2, 2)})
    with pytest.raises(ValueError, match="FSP needs equal channel counts: student 'b' has 3, teacher 'b' has 4"):
        FlowBased()(s, t)
