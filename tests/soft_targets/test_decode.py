"""Top-k decoding for the KD loss: renormalised over the kept classes, or with the residual mass
spread over the rest, against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from raykd.soft_targets.codec import decode_topk, encode_topk

# One teacher row over 5 classes; integers are exact in float16, so stored values equal these.
LOGITS = [1.0, 4.0, 2.0, 3.0, 0.0]
Z = sum(math.exp(v) for v in LOGITS)  # e^0 + e^1 + e^2 + e^3 + e^4
LSE = math.log(Z)


def _encoded(k: int):
    values, indices = encode_topk(torch.tensor([LOGITS]), k)
    return torch.from_numpy(values), torch.from_numpy(indices), torch.tensor([LSE])


def test_renormalize_keeps_the_top_k_logits_and_puts_minus_inf_elsewhere():
    values, indices, _ = _encoded(2)
    dense = decode_topk(values, indices, 5, mode="renormalize")
    inf = float("-inf")
    assert dense.tolist() == [[inf, 4.0, inf, 3.0, inf]]
    # softmax at T=2 over the kept classes only: e^(4/2), e^(3/2) renormalised.
    probs = torch.softmax(dense / 2.0, dim=-1)[0]
    expected = [math.exp(2.0) / (math.exp(2.0) + math.exp(1.5)), math.exp(1.5) / (math.exp(2.0) + math.exp(1.5))]
    torch.testing.assert_close(probs[[1, 3]], torch.tensor(expected))
    assert probs[[0, 2, 4]].sum() == 0


def test_renormalize_is_the_default_and_ignores_logsumexp():
    values, indices, lse = _encoded(2)
    torch.testing.assert_close(decode_topk(values, indices, 5), decode_topk(values, indices, 5, logsumexp=lse))


def test_residual_keeps_true_probabilities_and_spreads_the_rest_evenly():
    values, indices, lse = _encoded(2)
    dense = decode_topk(values, indices, 5, mode="residual", logsumexp=lse)
    p4, p3 = math.exp(4) / Z, math.exp(3) / Z  # kept classes 1 and 3
    rest = (math.exp(1) + math.exp(2) + math.exp(0)) / Z / 3  # the 3 others share 1 - p4 - p3
    expected = torch.tensor([[math.log(rest), math.log(p4), math.log(rest), math.log(p3), math.log(rest)]])
    torch.testing.assert_close(dense, expected)
    # At T = 1 the softmax is exact on the kept classes and the tail holds exactly the true mass.
    probs = torch.softmax(dense, dim=-1)[0]
    torch.testing.assert_close(probs[[1, 3]], torch.tensor([p4, p3]))
    torch.testing.assert_close(probs[[0, 2, 4]].sum(), torch.tensor(1 - p4 - p3))


def test_residual_at_temperature_keeps_kept_ratios_and_bounds_the_tail():
    values, indices, lse = _encoded(2)
    residual = decode_topk(values, indices, 5, mode="residual", logsumexp=lse)
    renormalized = decode_topk(values, indices, 5, mode="renormalize")
    true = torch.tensor([LOGITS])
    temperature = 4.0
    p_res, p_ren, p_true = (torch.softmax(t / temperature, dim=-1)[0] for t in (residual, renormalized, true))
    # kept classes keep their ratio exp((4 - 3) / T) in every decoding
    for p in (p_res, p_ren, p_true):
        torch.testing.assert_close(p[1] / p[3], torch.tensor(math.exp(1 / temperature)))
    # tail mass at T > 1: renormalize (0) <= teacher <= residual (even tail, Jensen)
    tail = [0, 2, 4]
    assert p_ren[tail].sum() == 0 < p_true[tail].sum() < p_res[tail].sum()


def test_full_k_decodes_to_log_probabilities_in_residual_mode():
    values, indices, lse = _encoded(5)
    dense = decode_topk(values, indices, 5, mode="residual", logsumexp=lse)
    torch.testing.assert_close(dense, torch.tensor([[v - LSE for v in LOGITS]]))
    torch.testing.assert_close(torch.softmax(dense, -1), torch.softmax(decode_topk(values, indices, 5), -1))


def test_residual_with_no_mass_left_gives_the_tail_zero_probability():
    # Rounding can make the kept probabilities sum to (slightly above) 1: the tail gets -inf, not NaN.
    values = torch.tensor([[10.0, 0.0]])
    indices = torch.tensor([[0, 1]])
    lse = torch.tensor([9.99])  # smaller than the true log-sum-exp, as float16 rounding can make it
    dense = decode_topk(values, indices, 4, mode="residual", logsumexp=lse)
    assert torch.isneginf(dense[0, 2:]).all() and torch.isfinite(dense[0, :2]).all()
    assert torch.isfinite(torch.softmax(dense, -1)).all()


def test_batches_decode_row_by_row():
    logits = torch.tensor([LOGITS, [0.0, 0.0, 5.0, 1.0, 2.0]])
    values, indices = encode_topk(logits, 3)
    lse = torch.logsumexp(logits, dim=1)
    dense = decode_topk(torch.from_numpy(values), torch.from_numpy(indices), 5, mode="residual", logsumexp=lse)
    for row in range(2):
        probs = torch.softmax(dense[row], -1)
        true = torch.softmax(logits[row], -1)
        kept = torch.from_numpy(indices[row]).long()
        torch.testing.assert_close(probs[kept], true[kept], rtol=1e-3, atol=1e-4)
        torch.testing.assert_close(probs.sum(), torch.tensor(1.0))


def test_bad_arguments_are_refused():
    values, indices, _ = _encoded(2)
    with pytest.raises(ValueError, match=r"needs logsumexp="):
        decode_topk(values, indices, 5, mode="residual")
    with pytest.raises(ValueError, match=r"decode mode must be one of \('renormalize', 'residual'\), got 'soft'"):
        decode_topk(values, indices, 5, mode="soft")
    with pytest.raises(ValueError, match=r"logsumexp has 2 rows but topk_values has 1"):
        decode_topk(values, indices, 5, mode="residual", logsumexp=torch.tensor([LSE, LSE]))
    with pytest.raises(ValueError, match=r"k must be in \[1, num_classes=1\], got 2"):
        decode_topk(values, indices, 1)
    with pytest.raises(ValueError, match=r"same \(batch, k\) shape"):
        decode_topk(values, indices[:, :1], 5)
