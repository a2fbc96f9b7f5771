import numpy as np
import pytest
import torch

from raykd.strategies import DistilBERT

from .helpers import leaf, output


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_triple_loss_matches_numpy():
    s_logits, t_logits = leaf(2, 4, 6, seed=0), leaf(2, 4, 6, seed=1)
    h_s, h_t = leaf(2, 4, 3, seed=2), leaf(2, 4, 3, seed=3)
    labels = torch.tensor([[-100, 2, -100, 5], [1, -100, -100, -100]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    s, t = s_logits.detach().numpy(), t_logits.detach().numpy()
    keep = labels.numpy() != -100
    T = 2.0
    lp_s, p_t = _log_softmax(s[keep] / T), np.exp(_log_softmax(t[keep] / T))
    kd = (p_t * (np.log(p_t) - lp_s)).sum(axis=1).mean() * T**2
    mlm = -_log_softmax(s[keep])[np.arange(keep.sum()), labels.numpy()[keep]].mean()
    hs, ht = h_s.detach().numpy(), h_t.detach().numpy()
    cos = (hs * ht).sum(-1) / (np.linalg.norm(hs, axis=-1) * np.linalg.norm(ht, axis=-1))
    m = mask.numpy()
    cos_loss = ((1 - cos) * m).sum() / m.sum()
    expected = 5.0 * kd + 2.0 * mlm + 1.0 * cos_loss
    loss = DistilBERT()(
        output(s_logits, hidden_states=(h_s,)), output(t_logits, hidden_states=(h_t,)), labels, attention_mask=mask
    )
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-9)


def test_identical_models_leave_only_the_mlm_term():
    logits, h = leaf(2, 3, 5, seed=0), leaf(2, 3, 4, seed=1)
    labels = torch.tensor([[0, -100, 4], [2, 2, -100]])
    both = DistilBERT()(
        output(logits, hidden_states=(h,)), output(logits.detach().clone(), hidden_states=(h.detach().clone(),)), labels
    )
    mlm_only = DistilBERT(alpha_ce=0.0, alpha_cos=0.0)(output(logits), output(logits), labels)
    assert float(both.detach()) == pytest.approx(float(mlm_only.detach()), rel=1e-9)


def test_requires_follow_the_weights_and_errors():
    assert DistilBERT(alpha_mlm=0.0, alpha_cos=0.0).requires == frozenset({"logits"})
    with pytest.raises(ValueError, match="MLM term needs labels"):
        DistilBERT(alpha_cos=0.0)(output(torch.zeros(1, 2, 3)), output(torch.zeros(1, 2, 3)))
    with pytest.raises(ValueError, match="last hidden state"):
        DistilBERT(alpha_mlm=0.0)(output(torch.zeros(1, 2, 3)), output(torch.zeros(1, 2, 3)))
    s = output(torch.zeros(1, 2, 3), hidden_states=(torch.zeros(1, 2, 4),))
    t = output(torch.zeros(1, 2, 3), hidden_states=(torch.zeros(1, 2, 5),))
    with pytest.raises(ValueError, match="use HiddenStateDistillation"):
        DistilBERT(alpha_mlm=0.0)(s, t)
    with pytest.raises(ValueError, match="alpha_ce must be a finite number >= 0"):
        DistilBERT(alpha_ce=-1)


def test_bare_encoder_pooled_logits_with_a_token_mask():
    """A bare encoder's logits are its pooled embedding (B, H): the (B, L) mask then only reaches
    the cosine over token states, where padding is left out."""
    pooled_s, pooled_t = leaf(2, 6, seed=0), leaf(2, 6, seed=1)
    h_s, h_t = leaf(2, 4, 6, seed=2), leaf(2, 4, 6, seed=3)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    loss = DistilBERT(alpha_mlm=0.0, alpha_ce=0.0)(
        output(pooled_s, hidden_states=(h_s,)), output(pooled_t, hidden_states=(h_t,)), attention_mask=mask
    )
    cos = torch.nn.functional.cosine_similarity(h_s, h_t, dim=-1).detach()
    expected = float(((1 - cos) * mask).sum() / mask.sum())
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-9)
    padded_too = float((1 - cos).mean())
    assert expected != pytest.approx(padded_too)  # the mask matters here
    with_kl = DistilBERT(alpha_mlm=0.0)(output(pooled_s, hidden_states=(h_s,)), output(pooled_t, hidden_states=(h_t,)), attention_mask=mask)
    assert torch.isfinite(with_kl)
    with pytest.raises(ValueError, match="the hidden states' tokens"):
        DistilBERT(alpha_mlm=0.0)(output(pooled_s, hidden_states=(h_s,)), output(pooled_t, hidden_states=(h_t,)), attention_mask=mask[:, :3])
