import numpy as np
import pytest
import torch

from raykd.strategies import SimilarityPreserving

from .helpers import output


def _g(f):
    f = f.reshape(f.shape[0], -1)
    g = f @ f.T
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def test_matches_numpy_on_conv_features_of_different_width():
    s, t = torch.randn(4, 2, 3, 3, dtype=torch.float64), torch.randn(4, 5, 2, 2, dtype=torch.float64)
    expected = 3000.0 * ((_g(s.numpy()) - _g(t.numpy())) ** 2).sum() / 16
    loss = SimilarityPreserving()(output(torch.zeros(4, 1), {"x": s}), output(torch.zeros(4, 1), {"y": t}))
    assert float(loss) == pytest.approx(expected, rel=1e-9)


def test_uses_last_feature_and_is_scale_invariant():
    f = torch.randn(3, 4, dtype=torch.float64)
    s = output(torch.zeros(3, 1), {"first": torch.randn(3, 2, dtype=torch.float64), "last": 5.0 * f})
    t = output(torch.zeros(3, 1), {"last": f})
    assert float(SimilarityPreserving()(s, t)) == pytest.approx(0.0, abs=1e-12)
    assert float(SimilarityPreserving(pairs=[("first", "last")])(s, t)) > 0
