"""Ensemble: vmapped members equal the loop; grouping by architecture; combine modes."""

from __future__ import annotations

import pytest
import torch

from raykd.models import MLP
from raykd.teachers import EnsembleTeacher, NeuralNetworkTeacher, build_from_config
from raykd.teachers.ensemble import architecture_groups


def members(layers=()):
    torch.manual_seed(0)
    same = [NeuralNetworkTeacher(MLP(8, [16, 16], 4), layers=layers) for _ in range(3)]
    other = [NeuralNetworkTeacher(MLP(8, [12], 4), layers=())]
    return same[:2] + other + same[2:]


def test_groups_same_architecture_and_keeps_unique_ones_apart():
    assert architecture_groups(members()) == [[0, 1, 3], [2]]


@pytest.mark.parametrize("combine", ["mean_logits", "mean_probs", "vote"])
def test_vmap_matches_loop(combine):
    ms = members(layers=["body.layer1"])
    x = torch.randn(9, 8)
    fast = EnsembleTeacher(ms, combine=combine).predict(x)
    slow = EnsembleTeacher(ms, combine=combine, vectorize=False).predict(x)
    torch.testing.assert_close(fast.logits, slow.logits, atol=1e-5, rtol=0)
    assert list(fast.features) == list(slow.features)
    for name in slow.features:
        torch.testing.assert_close(fast.features[name], slow.features[name], atol=1e-5, rtol=0)


def test_member_logits_match_each_member():
    ms = members()
    x = torch.randn(5, 8)
    stacked = EnsembleTeacher(ms).member_logits(x)
    for i, m in enumerate(ms):
        torch.testing.assert_close(stacked[i], m(x).logits, atol=1e-5, rtol=0)


def test_stacked_weights_follow_member_updates():
    ms = members()
    ens = EnsembleTeacher(ms)
    x = torch.randn(4, 8)
    ens(x)
    with torch.no_grad():
        ms[0].net.model.head.bias.add_(5.0)  # in-place change bumps the tensor version
    torch.testing.assert_close(ens(x).logits, EnsembleTeacher(ms, vectorize=False)(x).logits, atol=1e-5, rtol=0)


def test_class_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="disagree on the class count"):
        EnsembleTeacher([NeuralNetworkTeacher(MLP(8, [4], 3)), NeuralNetworkTeacher(MLP(8, [4], 4))])


def test_from_checkpoint_directory(ensemble_dir):
    ens = build_from_config({"kind": "Ensemble", "checkpoint": str(ensemble_dir), "combine": "mean_probs"})
    assert len(ens.members) == 3 and ens.groups == [[0, 1, 2]]
    out = ens.predict(torch.randn(6, 8))
    assert out.logits.shape == (6, 4)
    torch.testing.assert_close(out.logits.exp().sum(-1), torch.ones(6))
