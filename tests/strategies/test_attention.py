import numpy as np
import pytest
import torch

from raykd.strategies import AttentionBased

from .helpers import attention_probs, output


def _at_numpy(f):
    a = (np.abs(f) ** 2).mean(axis=1).reshape(f.shape[0], -1)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_attention_transfer_matches_numpy_with_pooling():
    s, t = torch.randn(2, 3, 2, 2, dtype=torch.float64), torch.randn(2, 5, 4, 4, dtype=torch.float64)
    t_pooled = t.numpy().reshape(2, 5, 2, 2, 2, 2).mean(axis=(3, 5))
    expected = ((_at_numpy(s.numpy()) - _at_numpy(t_pooled)) ** 2).mean()
    strategy = AttentionBased()
    loss = strategy(output(torch.zeros(2, 1), {"a": s}), output(torch.zeros(2, 1), {"b": t}))
    assert float(loss) == pytest.approx(1000.0 * expected, rel=1e-9)  # default β = 1000


def test_attention_maps_ignore_channel_count_and_scale():
    f = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    same = torch.cat([f, f], dim=1) * 7.0  # same spatial attention after normalisation
    loss = AttentionBased()(output(torch.zeros(2, 1), {"a": f}), output(torch.zeros(2, 1), {"a": same}))
    assert float(loss) == pytest.approx(0.0, abs=1e-12)


def _kl_numpy(s, t, mask):
    total, count = 0.0, 0
    for b in range(s.shape[0]):
        for h in range(s.shape[1]):
            for q in range(s.shape[2]):
                if mask is not None and not mask[b, q]:
                    continue
                total += float((t[b, h, q] * (np.log(t[b, h, q]) - np.log(s[b, h, q]))).sum())
                count += 1
    return total / count


def test_transformer_attention_kl_with_uniform_layer_map_and_padding_mask():
    s_attn = tuple(attention_probs(2, 2, 4, seed=i) for i in range(2))
    t_attn = tuple(attention_probs(2, 2, 4, seed=10 + i) for i in range(4))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    m = mask.numpy().astype(bool)
    # 2 student layers onto 4 teacher layers: (0 -> 1), (1 -> 3)
    expected = _kl_numpy(s_attn[0].detach().numpy(), t_attn[1].detach().numpy(), m) + _kl_numpy(
        s_attn[1].detach().numpy(), t_attn[3].detach().numpy(), m
    )
    s, t = output(torch.zeros(2, 1), attentions=s_attn), output(torch.zeros(2, 1), attentions=t_attn)
    loss = AttentionBased()(s, t, attention_mask=mask)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-9)  # weight 1 in transformer mode
    last = AttentionBased(layer_map="last")(s, t, attention_mask=mask)
    assert float(last.detach()) == pytest.approx(
        _kl_numpy(s_attn[1].detach().numpy(), t_attn[3].detach().numpy(), m), rel=1e-9
    )
    explicit = AttentionBased(pairs=[(0, 0)])(s, t)
    assert float(explicit.detach()) == pytest.approx(
        _kl_numpy(s_attn[0].detach().numpy(), t_attn[0].detach().numpy(), None), rel=1e-9
    )


def test_uniform_layer_map_when_the_teacher_depth_is_no_multiple():
    """TinyBERT's m -> ⌊m·N/M⌋ (1-based): 4 student layers onto 6 teacher layers take 1, 3, 4, 6."""
    s_attn = tuple(attention_probs(2, 2, 3, seed=i) for i in range(4))
    t_attn = tuple(attention_probs(2, 2, 3, seed=10 + i) for i in range(6))
    s, t = output(torch.zeros(2, 1), attentions=s_attn), output(torch.zeros(2, 1), attentions=t_attn)
    expected = sum(_kl_numpy(s_attn[m].detach().numpy(), t_attn[n].detach().numpy(), None) for m, n in [(0, 0), (1, 2), (2, 3), (3, 5)])
    assert float(AttentionBased()(s, t).detach()) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="cannot map 6 student attention layers uniformly onto 4"):
        AttentionBased()(t, s)


def test_identical_attentions_give_zero():
    a = tuple(attention_probs(2, 2, 3, seed=i) for i in range(2))
    s, t = (
        output(torch.zeros(2, 1), attentions=a),
        output(torch.zeros(2, 1), attentions=tuple(x.detach().clone() for x in a)),
    )
    assert float(AttentionBased()(s, t).detach()) == pytest.approx(0.0, abs=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="p must be > 0"):
        AttentionBased(p=0)
    with pytest.raises(ValueError, match="needs attentions but the student output has none"):
        AttentionBased(mode="transformer")(output(torch.zeros(2, 1)), output(torch.zeros(2, 1)))
    s = output(torch.zeros(2, 1), attentions=(attention_probs(2, 2, 3, seed=0),))
    t = output(torch.zeros(2, 1), attentions=(attention_probs(2, 4, 3, seed=1),))
    with pytest.raises(ValueError, match="same heads and sequence length"):
        AttentionBased()(s, t)
    with pytest.raises(ValueError, match="must have 4 dimensions"):
        AttentionBased()(
            output(torch.zeros(2, 1), {"a": torch.zeros(2, 3)}), output(torch.zeros(2, 1), {"a": torch.zeros(2, 3)})
        )
    with pytest.raises(ValueError, match="out of range"):
        AttentionBased(pairs=[(0, 5)])(s, s)
