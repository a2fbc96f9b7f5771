import numpy as np
import pytest
import torch

from raykd.strategies import DecoupledKD
from raykd.strategies.dkd import tckd_nckd
from raykd.strategies.functional import soft_kl

from .helpers import output


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _reference(s, t, y, T):
    tckd = nckd = 0.0
    for si, ti, yi in zip(s, t, y):
        ps, pt = _softmax(si / T), _softmax(ti / T)
        bs, bt = np.array([ps[yi], 1 - ps[yi]]), np.array([pt[yi], 1 - pt[yi]])
        tckd += (bt * np.log(bt / bs)).sum()
        qs, qt = _softmax(np.delete(si, yi) / T), _softmax(np.delete(ti, yi) / T)  # target class removed
        nckd += (qt * np.log(qt / qs)).sum()
    n = len(y)
    return tckd / n * T**2, nckd / n * T**2


def test_terms_match_numpy_and_default_loss():
    s, t = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    y = torch.tensor([1, 4, 0])
    tckd, nckd = _reference(s.numpy(), t.numpy(), y.numpy(), 4.0)
    got = tckd_nckd(s, t, y, 4.0)
    assert float(got[0]) == pytest.approx(tckd, rel=1e-9) and float(got[1]) == pytest.approx(nckd, rel=1e-9)
    log_p = s.numpy() - np.log(np.exp(s.numpy()).sum(axis=1, keepdims=True))
    ce = -log_p[np.arange(3), y.numpy()].mean()
    loss = DecoupledKD()(output(s), output(t), y)  # alpha 1, beta 8, T 4, CE weight 1
    assert float(loss) == pytest.approx(ce + 1.0 * tckd + 8.0 * nckd, rel=1e-9)


def test_kd_decomposes_into_tckd_and_weighted_nckd():
    # Paper, eq. (4) per sample: KD = TCKD + (1 − p_t^teacher) · NCKD.
    s, t = torch.randn(1, 6, dtype=torch.float64), torch.randn(1, 6, dtype=torch.float64)
    y = torch.tensor([2])
    tckd, nckd = tckd_nckd(s, t, y, 1.0)
    p_target = torch.softmax(t, dim=1)[0, 2]
    assert float(soft_kl(s, t, 1.0)[0]) == pytest.approx(float(tckd + (1 - p_target) * nckd), rel=1e-9)


def test_warmup_follows_set_epoch():
    s, t, y = torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64), torch.tensor([0, 1])
    kd_only = DecoupledKD(ce_weight=0.0)
    full = float(kd_only(output(s), output(t), y))
    kd_only.set_epoch(4)
    assert float(kd_only(output(s), output(t), y)) == pytest.approx(full * 5 / 20, rel=1e-9)
    kd_only.set_epoch(30)
    assert float(kd_only(output(s), output(t), y)) == pytest.approx(full, rel=1e-9)


def test_identical_logits_give_zero_kd_and_errors():
    s = torch.randn(2, 4, dtype=torch.float64)
    assert float(DecoupledKD(ce_weight=0.0)(output(s), output(s.clone()), torch.tensor([0, 3]))) == pytest.approx(
        0, abs=1e-12
    )
    with pytest.raises(ValueError, match="needs labels"):
        DecoupledKD()(output(s), output(s))
    with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
        DecoupledKD(beta=-1)
    with pytest.raises(ValueError, match="warmup_epochs must be an integer >= 0"):
        DecoupledKD(warmup_epochs=-2)
