import itertools

import numpy as np
import pytest
import torch

from raykd.strategies import RelationBased

from .helpers import output


def _huber(x):
    a = np.abs(x)
    return np.where(a < 1.0, 0.5 * x**2, a - 0.5)


def _distances(e):
    b = len(e)
    d = np.array([[np.linalg.norm(e[i] - e[j]) for j in range(b)] for i in range(b)])
    off = [d[i, j] for i in range(b) for j in range(b) if i != j]
    return d / np.mean(off)


def _angles(e):
    b = len(e)
    out = np.zeros((b, b, b))
    for j, i, k in itertools.product(range(b), repeat=3):
        u, v = e[i] - e[j], e[k] - e[j]
        nu, nv = np.linalg.norm(u), np.linalg.norm(v)
        out[j, i, k] = 0.0 if nu == 0 or nv == 0 else (u @ v) / (nu * nv)
    return out


def test_matches_explicit_loops():
    s, t = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64) * 3
    sn, tn = s.numpy(), t.numpy()
    expected = 25 * _huber(_distances(sn) - _distances(tn)).mean() + 50 * _huber(_angles(sn) - _angles(tn)).mean()
    loss = RelationBased()(output(torch.zeros(5, 1), {"e": s}), output(torch.zeros(5, 1), {"e": t}))
    assert float(loss) == pytest.approx(expected, rel=1e-9)


def test_distances_are_normalised_by_their_mean_not_max():
    # Scaling the teacher changes neither mean-normalised distances nor angles.
    t = torch.randn(4, 3, dtype=torch.float64)
    loss = RelationBased()(output(torch.zeros(4, 1), {"e": 3.0 * t}), output(torch.zeros(4, 1), {"e": t}))
    assert float(loss) == pytest.approx(0.0, abs=1e-12)
    # Points on a line at 0, 1, 3: pair distances 1, 3, 2 (each twice), mean 2; a max normaliser would give 1/3.
    e = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    from raykd.strategies.relation import _normalised_distances

    assert _normalised_distances(e)[0, 1].item() == pytest.approx(0.5)


def test_terms_can_be_switched_off_and_default_is_last_feature():
    s = output(torch.zeros(4, 1), {"x": torch.randn(4, 2), "e": torch.randn(4, 3)})
    t = output(torch.zeros(4, 1), {"y": torch.randn(4, 5), "e": torch.randn(4, 3)})
    d = RelationBased(angle_weight=0.0)(s, t)
    a = RelationBased(distance_weight=0.0)(s, t)
    assert float(RelationBased()(s, t)) == pytest.approx(float(d + a), rel=1e-6)
    assert float(RelationBased(pairs=[("e", "e")])(s, t)) == pytest.approx(float(d + a), rel=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="distance_weight must be a finite number >= 0"):
        RelationBased(distance_weight=-1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        RelationBased()(
            output(torch.zeros(1, 1), {"e": torch.randn(1, 3)}), output(torch.zeros(1, 1), {"e": torch.randn(1, 3)})
        )
