"""Online: deep mutual learning peers change and their loss falls on a toy problem."""

from __future__ import annotations

import torch

from raykd.teachers import build_from_config
from raykd.teachers.online import mutual_kl

from .conftest import SPEC, toy_problem


def test_mutual_learning_updates_weights_and_lowers_loss():
    teacher = build_from_config({"kind": "Online", "spec": SPEC, "num_peers": 2, "lr": 0.05, "seed": 0})
    before = [p.detach().clone() for p in teacher.parameters()]
    x, y = toy_problem(256, seed=123)
    losses = [teacher.step(x, y)["loss"] for _ in range(40)]
    assert losses[-1] < 0.5 * losses[0]
    assert all(not torch.equal(a, b) for a, b in zip(before, teacher.parameters()))
    acc = (teacher.predict(x).logits.argmax(-1) == y).float().mean()
    assert acc > 0.8


def test_student_logits_join_as_a_peer():
    teacher = build_from_config({"kind": "Online", "spec": SPEC, "num_peers": 1, "seed": 1})
    x, y = toy_problem(64, seed=1)
    result = teacher.step(x, y, student_logits=torch.randn(64, 4))
    assert len(result["peer_losses"]) == 1 and result["step"] == 1


def test_mutual_kl_is_zero_for_identical_predictions():
    z = torch.randn(5, 4)
    assert mutual_kl(z, z.clone(), temperature=2.0).abs() < 1e-6
