"""Self (Born-Again Networks): the frozen previous generation as a teacher, read from its checkpoint.

The generations themselves train through the student loop: tests/pipelines/test_born_again.py."""

from __future__ import annotations

import pytest
import torch

from raykd.teachers import SelfTeacher, build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members

from .conftest import SPEC


def test_self_teacher_is_frozen_and_built_from_a_checkpoint(tmp_path, trained_mlp):
    save_members(tmp_path, [MemberCheckpoint("gen2", SPEC, trained_mlp)], extra={"generation": 2})
    teacher = build_from_config({"kind": "Self", "checkpoint": str(tmp_path), "layers": ["body.layer1"]})
    assert isinstance(teacher, SelfTeacher) and teacher.generation == 2
    assert teacher.describe()["generation"] == 2 and teacher.num_classes == 4
    assert not any(p.requires_grad for p in teacher.parameters())
    out = teacher.predict(torch.randn(3, 8))
    assert out.logits.shape == (3, 4) and list(out.features) == ["body.layer1"]


def test_from_config_round_trips_the_saved_weights(tmp_path, trained_mlp):
    save_members(tmp_path, [MemberCheckpoint("gen0", SPEC, trained_mlp)], extra={"generation": 0})
    teacher = SelfTeacher.from_config(str(tmp_path))
    x = torch.randn(16, 8)
    with torch.no_grad():
        assert torch.allclose(teacher.predict(x).logits, trained_mlp(x), atol=1e-6)


def test_generation_number_from_the_manifest_an_argument_or_zero(tmp_path, trained_mlp):
    with_extra, without = tmp_path / "with", tmp_path / "without"
    save_members(with_extra, [MemberCheckpoint("gen3", SPEC, trained_mlp)], extra={"generation": 3})
    save_members(without, [MemberCheckpoint("gen", SPEC, trained_mlp)])
    assert SelfTeacher.from_config(str(with_extra)).generation == 3
    assert SelfTeacher.from_config(str(with_extra), generation=5).generation == 5
    assert SelfTeacher.from_config(str(without)).generation == 0
    with pytest.raises(ValueError, match="generation must be >= 0"):
        SelfTeacher(trained_mlp, generation=-1)


def test_from_config_picks_a_named_member(tmp_path, trained_mlp):
    from .conftest import train_mlp

    other = train_mlp(seed=1, epochs=3)
    save_members(tmp_path, [MemberCheckpoint("a", SPEC, trained_mlp), MemberCheckpoint("b", SPEC, other)])
    x = torch.randn(4, 8)
    with torch.no_grad():
        assert torch.allclose(SelfTeacher.from_config(str(tmp_path), member="a").predict(x).logits, trained_mlp(x), atol=1e-6)
        assert torch.allclose(SelfTeacher.from_config(str(tmp_path)).predict(x).logits, other(x), atol=1e-6)
    with pytest.raises(ValueError, match="no member 'c'"):
        SelfTeacher.from_config(str(tmp_path), member="c")
