import numpy as np
import pytest
import torch

from raykd.strategies import ContrastiveBased

from .helpers import output


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _nce(p, n_data):
    k = p.shape[1] - 1
    noise = k / n_data
    pos, neg = p[:, 0], p[:, 1:]
    return -(np.log(pos / (pos + noise + 1e-7)).sum() + np.log(noise / (neg + noise + 1e-7)).sum()) / p.shape[0]


def _setup():
    torch.manual_seed(0)
    strategy = ContrastiveBased(n_data=10, student_dim=5, teacher_dim=6, feat_dim=4, nce_k=3).double()
    s, t = torch.randn(2, 5, dtype=torch.float64), torch.randn(2, 6, dtype=torch.float64)
    return strategy, output(torch.zeros(2, 1), {"e": s}), output(torch.zeros(2, 1), {"e": t})


def test_loss_and_memory_update_match_numpy():
    strategy, s, t = _setup()
    index = torch.tensor([4, 7])
    contrast = torch.tensor([[4, 0, 1, 2], [7, 3, 9, 9]])
    mem_s, mem_t = strategy.memory_student.numpy().copy(), strategy.memory_teacher.numpy().copy()
    ws, bs = strategy.embed_student.linear.weight.detach().numpy(), strategy.embed_student.linear.bias.detach().numpy()
    wt, bt = strategy.embed_teacher.linear.weight.detach().numpy(), strategy.embed_teacher.linear.bias.detach().numpy()
    v_s = _unit(s.features["e"].numpy() @ ws.T + bs)
    v_t = _unit(t.features["e"].numpy() @ wt.T + bt)
    out_s = np.exp(np.einsum("bkd,bd->bk", mem_t[contrast.numpy()], v_s) / 0.07)
    out_t = np.exp(np.einsum("bkd,bd->bk", mem_s[contrast.numpy()], v_t) / 0.07)
    z_s, z_t = out_s.mean() * 10, out_t.mean() * 10
    expected = 0.8 * (_nce(out_s / z_s, 10) + _nce(out_t / z_t, 10))

    loss = strategy(s, t, index=index, contrast_index=contrast)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-9)
    assert float(strategy.z_student) == pytest.approx(z_s, rel=1e-9)
    np.testing.assert_allclose(
        strategy.memory_student[[4, 7]].numpy(), _unit(0.5 * mem_s[[4, 7]] + 0.5 * v_s), rtol=1e-9
    )
    np.testing.assert_allclose(
        strategy.memory_teacher[[4, 7]].numpy(), _unit(0.5 * mem_t[[4, 7]] + 0.5 * v_t), rtol=1e-9
    )
    untouched = [i for i in range(10) if i not in (4, 7)]
    np.testing.assert_array_equal(strategy.memory_student[untouched].numpy(), mem_s[untouched])


def test_z_is_fixed_after_the_first_batch_and_eval_leaves_memory_alone():
    strategy, s, t = _setup()
    strategy(s, t, index=torch.tensor([0, 1]))
    z = float(strategy.z_student)
    strategy.eval()
    before = strategy.memory_student.clone()
    strategy(s, t, index=torch.tensor([2, 3]))
    assert float(strategy.z_student) == z
    assert torch.equal(strategy.memory_student, before)


def test_embeddings_are_built_lazily_and_registered():
    strategy = ContrastiveBased(n_data=8, nce_k=2, feat_dim=3)
    assert not list(strategy.parameters())
    s, t = output(torch.zeros(2, 1), {"e": torch.randn(2, 5)}), output(torch.zeros(2, 1), {"e": torch.randn(2, 7)})
    strategy.materialize(s, t)
    shapes = sorted(tuple(p.shape) for p in strategy.parameters())
    assert shapes == [(3,), (3,), (3, 5), (3, 7)]


def test_errors():
    strategy, s, t = _setup()
    with pytest.raises(ValueError, match="needs the samples' dataset indices"):
        strategy(s, t)
    with pytest.raises(ValueError, match=r"index values must lie in \[0, n_data=10\)"):
        strategy(s, t, index=torch.tensor([0, 10]))
    with pytest.raises(ValueError, match="index has 3 entries but the batch has 2"):
        strategy(s, t, index=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="contrast_index must have shape"):
        strategy(s, t, index=torch.tensor([0, 1]), contrast_index=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="n_data must be an integer >= 1"):
        ContrastiveBased(n_data=0)
    with pytest.raises(ValueError, match="nce_t must be > 0"):
        ContrastiveBased(n_data=4, nce_t=0.0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
        ContrastiveBased(n_data=4, momentum=2.0)
