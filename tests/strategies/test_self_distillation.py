import numpy as np
import pytest
import torch

from raykd.strategies import SelfDistillation

from .helpers import leaf, output


def _log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def test_matches_the_byot_formula():
    logits, f1, f2 = leaf(4, 3, seed=0), leaf(4, 2, 4, 4, seed=1), leaf(4, 5, 2, 2, seed=2)
    student = output(logits, {"block1": f1, "block2": f2})
    labels = torch.tensor([0, 2, 1, 2])
    strategy = SelfDistillation()
    strategy.materialize(student)
    hint, aux = strategy.heads["block1"](f1)
    hint, aux, lg = hint.detach().numpy(), aux.detach().numpy(), logits.detach().numpy()
    y, T = labels.numpy(), 3.0
    ce = lambda z: -_log_softmax(z)[np.arange(4), y].mean()  # noqa: E731
    p_deep = np.exp(_log_softmax(lg / T))
    kl = (p_deep * (np.log(p_deep) - _log_softmax(aux / T))).sum(axis=1).mean()
    expected = ce(lg) + 0.7 * ce(aux) + 0.3 * T**2 * kl + 0.03 * ((hint - f2.detach().numpy()) ** 2).mean()
    assert float(strategy(student, None, labels).detach()) == pytest.approx(expected, rel=1e-9)


def test_the_deepest_classifier_and_feature_act_as_teacher():
    logits, f1, f2 = leaf(4, 3, seed=0), leaf(4, 6, seed=1), leaf(4, 5, seed=2)
    strategy = SelfDistillation(alpha=1.0)
    loss = strategy(output(logits, {"a": f1, "b": f2}), None, torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert f2.grad is None  # the deepest feature is a target only
    assert f1.grad is not None and set(strategy.heads) == {"a"}
    aux = strategy.auxiliary_logits(output(logits, {"a": f1, "b": f2}))
    assert aux["a"].shape == (4, 3)


def test_errors():
    student = output(torch.zeros(2, 3), {"a": torch.zeros(2, 4)})
    with pytest.raises(ValueError, match="needs labels"):
        SelfDistillation()(student, None)
    with pytest.raises(ValueError, match="at least one shallow feature"):
        SelfDistillation()(student, None, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        SelfDistillation(alpha=-0.1)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        SelfDistillation(temperature=0)
