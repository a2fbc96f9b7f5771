import numpy as np
import pytest
import torch

from raykd.strategies import FactorTransfer

from .helpers import output


def _outputs():
    g = torch.Generator().manual_seed(0)
    s = output(torch.zeros(3, 1), {"f": torch.randn(3, 2, 4, 4, generator=g, dtype=torch.float64)})
    t = output(torch.zeros(3, 1), {"f": torch.randn(3, 4, 2, 2, generator=g, dtype=torch.float64)})
    return s, t


def test_paraphraser_pretraining_reduces_reconstruction_error():
    torch.manual_seed(0)
    teacher_features = [torch.randn(8, 6, dtype=torch.float64) for _ in range(2)]
    strategy = FactorTransfer(student_channels=3, teacher_channels=6, conv=False).double()
    history = strategy.pretrain_paraphraser(teacher_features, epochs=30, lr=1e-2)
    assert len(history) == 30 and history[-1] < 0.9 * history[0]
    assert bool(strategy.paraphraser_trained)
    assert all(p.grad is None for p in strategy.paraphraser.parameters())


def test_loss_is_the_l1_distance_of_normalised_factors():
    torch.manual_seed(0)
    s, t = _outputs()
    strategy = FactorTransfer(student_channels=2, teacher_channels=4).double()
    strategy.pretrain_paraphraser([t.features["f"]], epochs=1)
    with torch.no_grad():
        fs = strategy.translator(s.features["f"])  # (3, 2, 4, 4)
        ft = strategy.paraphraser.encoder(t.features["f"]).numpy()  # (3, 2, 2, 2)
    fs = fs.numpy().reshape(3, 2, 2, 2, 2, 2).mean(axis=(3, 5))  # pooled to the teacher's 2x2
    fs, ft = fs.reshape(3, -1), ft.reshape(3, -1)
    fs, ft = fs / np.linalg.norm(fs, axis=1, keepdims=True), ft / np.linalg.norm(ft, axis=1, keepdims=True)
    expected = 200.0 * np.abs(fs - ft).mean()
    assert float(strategy(s, t).detach()) == pytest.approx(expected, rel=1e-9)


def test_factor_width_follows_rate_and_warns_without_pretraining():
    s, t = _outputs()
    strategy = FactorTransfer(rate=0.5)
    strategy.materialize(s, t)
    assert strategy.paraphraser.encoder[3].out_channels == 2 and strategy.translator.encoder[0].in_channels == 2
    with pytest.warns(UserWarning, match="paraphraser has not been pre-trained"):
        strategy(s, t)


def test_errors():
    _, t = _outputs()
    with pytest.raises(ValueError, match=r"rate must be in \(0, 1\]"):
        FactorTransfer(rate=0)
    with pytest.raises(ValueError, match="one layer pair"):
        FactorTransfer(pairs=[("a", "a"), ("b", "b")])
    with pytest.raises(ValueError, match="paraphraser is not built yet"):
        FactorTransfer().reconstruction_loss(t.features["f"])
    with pytest.raises(ValueError, match="one-shot iterator"):
        FactorTransfer(student_channels=2, teacher_channels=4).pretrain_paraphraser(iter([t.features["f"]]), epochs=2)
