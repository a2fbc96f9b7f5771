import math

import numpy as np
import pytest
import torch

from raykd.strategies import HiddenStateDistillation
from raykd.strategies.hidden_state import layer_mapping

from .helpers import leaf, output


def test_layer_mappings():
    assert layer_mapping("uniform", 2, 4) == [(1, 2), (2, 4)]
    assert layer_mapping("uniform", 4, 6) == [(1, 1), (2, 3), (3, 4), (4, 6)]
    assert layer_mapping("skip", 6, 12) == [(1, 2), (2, 4), (3, 6), (4, 8), (5, 10)]  # PKD-Skip
    assert layer_mapping("last", 6, 12) == [(1, 7), (2, 8), (3, 9), (4, 10), (5, 11)]  # PKD-Last
    with pytest.raises(ValueError, match="more layers"):
        layer_mapping("uniform", 3, 2)
    with pytest.raises(ValueError, match="at least 2 layers"):
        layer_mapping("skip", 1, 4)


def test_xavier_projection_only_when_widths_differ():
    torch.manual_seed(0)
    strategy = HiddenStateDistillation(student_dim=4, teacher_dim=10)
    bound = math.sqrt(6.0 / (4 + 10))
    w = strategy.projection.weight.detach()
    assert w.shape == (10, 4) and float(w.abs().max()) <= bound and float(w.abs().max()) > 0.5 * bound
    assert float(strategy.projection.bias.detach().abs().sum()) == 0.0
    assert HiddenStateDistillation(student_dim=8, teacher_dim=8).projection is None
    lazy = HiddenStateDistillation()
    lazy.materialize(
        output(torch.zeros(1, 1), hidden_states=(torch.zeros(1, 2, 4),) * 2),
        output(torch.zeros(1, 1), hidden_states=(torch.zeros(1, 2, 10),) * 2),
    )
    assert lazy.projection.weight.shape == (10, 4)


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_pkd_cls_loss_matches_numpy():
    s_states = tuple(leaf(2, 3, 4, seed=i) for i in range(3))  # embeddings + 2 layers
    t_states = tuple(leaf(2, 3, 4, seed=10 + i) for i in range(5))  # embeddings + 4 layers
    loss = HiddenStateDistillation(mapping="uniform")(
        output(torch.zeros(2, 1), hidden_states=s_states), output(torch.zeros(2, 1), hidden_states=t_states)
    )
    expected = 0.0
    for si, ti in [(1, 2), (2, 4)]:
        hs, ht = s_states[si].detach().numpy()[:, 0], t_states[ti].detach().numpy()[:, 0]
        expected += ((_unit(hs) - _unit(ht)) ** 2).sum(-1).mean()
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-9)


def test_all_tokens_with_mask_projection_and_explicit_mapping():
    s_states = tuple(leaf(2, 3, 2, seed=i) for i in range(2))
    t_states = tuple(leaf(2, 3, 5, seed=10 + i) for i in range(3))
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    strategy = HiddenStateDistillation(
        mapping=[(0, 0), (1, 2)], pool="all", normalize=False, student_dim=2, teacher_dim=5
    )
    strategy.double()
    w, b = strategy.projection.weight.detach().numpy(), strategy.projection.bias.detach().numpy()
    m = mask.numpy().astype(bool)
    expected = 0.0
    for si, ti in [(0, 0), (1, 2)]:
        hs = s_states[si].detach().numpy() @ w.T + b
        ht = t_states[ti].detach().numpy()
        expected += ((hs - ht) ** 2).mean(-1)[m].mean()
    loss = strategy(
        output(torch.zeros(2, 1), hidden_states=s_states),
        output(torch.zeros(2, 1), hidden_states=t_states),
        attention_mask=mask,
    )
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-9)


def test_features_fallback_identical_gives_zero_and_errors():
    feats = {"l1": torch.randn(2, 4), "l2": torch.randn(2, 4)}
    s, t = output(torch.zeros(2, 1), feats), output(torch.zeros(2, 1), {k: v.clone() for k, v in feats.items()})
    assert float(HiddenStateDistillation()(s, t)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="out of range"):
        HiddenStateDistillation(mapping=[(0, 1)])(s, t)  # no embeddings among features
    with pytest.raises(ValueError, match="mapping is empty"):
        HiddenStateDistillation(mapping=[])
    with pytest.raises(ValueError, match="pool must be"):
        HiddenStateDistillation(pool="max")
    with pytest.raises(ValueError, match="needs the student's hidden states"):
        HiddenStateDistillation()(output(torch.zeros(2, 1)), t)


def test_progressive_distillation_is_seed_004s_mse_with_its_fields():
    """Seed 004's ProgressiveDistillation: layer_mapping, hidden_weight, Xavier projection, plain MSE."""
    from raykd import strategies

    torch.manual_seed(0)
    s_states = tuple(leaf(2, 3, 4, seed=i) for i in range(3))
    t_states = tuple(leaf(2, 3, 6, seed=10 + i) for i in range(5))
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    pd = strategies.build("ProgressiveDistillation", layer_mapping=[(2, 4)], hidden_weight=0.5, student_dim=4, teacher_dim=6).double()
    bound = math.sqrt(6.0 / (4 + 6))
    assert pd.projection.weight.shape == (6, 4) and float(pd.projection.weight.detach().abs().max()) <= bound
    loss = pd(output(torch.zeros(2, 1), hidden_states=s_states), output(torch.zeros(2, 1), hidden_states=t_states), attention_mask=mask)
    with torch.no_grad():
        m = mask.unsqueeze(-1).double()
        pooled_s = (pd.projection(s_states[2]) * m).sum(1) / m.sum(1)
        pooled_t = (t_states[4] * m).sum(1) / m.sum(1)
        expected = 0.5 * float((pooled_s - pooled_t).pow(2).mean())
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="hidden_weight must be a finite number >= 0"):
        strategies.build("ProgressiveDistillation", hidden_weight=-1)
