"""Self (Born-Again Networks): each generation learns from the frozen previous one."""

from __future__ import annotations

import torch

from raykd.teachers import SelfTeacher, born_again_generations, build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members

from .conftest import SPEC, toy_problem


def test_generations_report_accuracy_and_learn_from_the_previous_one():
    x, y = toy_problem(384, seed=123)
    ex, ey = toy_problem(256, seed=5)
    seen = []
    results = born_again_generations(SPEC, x, y, ex, ey, generations=3, epochs=8, on_generation=seen.append)
    assert [r.generation for r in results] == [0, 1, 2] and len(seen) == 3
    assert all(r.accuracy > 0.7 for r in results)
    assert all(0.0 <= r.ensemble_accuracy <= 1.0 for r in results)
    # Generation 1 learnt from 0: they agree on most predictions.
    with torch.no_grad():
        agree = (results[0].model(ex).argmax(-1) == results[1].model(ex).argmax(-1)).float().mean()
    assert agree > 0.85


def test_self_teacher_is_frozen_and_built_from_a_checkpoint(tmp_path, trained_mlp):
    save_members(tmp_path, [MemberCheckpoint("gen2", SPEC, trained_mlp)], extra={"generation": 2})
    teacher = build_from_config({"kind": "Self", "checkpoint": str(tmp_path), "layers": ["body.layer1"]})
    assert isinstance(teacher, SelfTeacher) and teacher.generation == 2
    assert not any(p.requires_grad for p in teacher.parameters())
    out = teacher.predict(torch.randn(3, 8))
    assert out.logits.shape == (3, 4) and list(out.features) == ["body.layer1"]
