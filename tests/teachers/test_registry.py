"""Every TeacherModelType by name: plain, picklable config → teacher → ModelOutput on a batch."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from raykd.outputs import ModelOutput
from raykd.teachers import Requirements, Teacher, available, build, build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members
from raykd.teachers.registry import TEACHERS

from .conftest import SPEC

# The 11 names of the TeacherModelType enum, exactly.
KINDS = [
    "NeuralNetwork", "Ensemble", "Pretrained", "Transformer", "MultiModal", "Adaptive",
    "Online", "Curriculum", "Self", "Quantized", "Distributed",
]


def test_available_is_exactly_the_enum():
    assert sorted(KINDS) == available()
    for kind in KINDS:
        assert TEACHERS.get(kind).kind == kind


def _config(kind: str, request, tmp_path) -> tuple[dict, object]:
    """A plain config and a batch for `kind`."""
    ckpt = str(request.getfixturevalue("checkpoint_dir"))
    x = torch.randn(6, 8)
    if kind == "NeuralNetwork":
        return {"kind": kind, "checkpoint": ckpt, "layers": ["body.layer1"]}, x
    if kind == "Ensemble":
        return {"kind": kind, "checkpoint": str(request.getfixturevalue("ensemble_dir"))}, x
    if kind == "Pretrained":
        return {"kind": kind, "path": f"{ckpt}/mlp0.safetensors", "spec": SPEC}, x
    if kind == "Transformer":
        transformers = pytest.importorskip("transformers")
        cfg = transformers.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=16, max_position_embeddings=16)
        torch.manual_seed(0)
        transformers.BertModel(cfg).save_pretrained(tmp_path / "bert")
        ids = torch.randint(1, 30, (6, 5))
        return {"kind": kind, "model_dir": str(tmp_path / "bert")}, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if kind == "MultiModal":
        from raykd.models import build_model

        img, txt = {**SPEC, "num_classes": 5}, {**SPEC, "in_features": 3, "num_classes": 5}
        save_members(tmp_path / "mm", [MemberCheckpoint("image", img, build_model(img)), MemberCheckpoint("text", txt, build_model(txt))])
        return {"kind": kind, "checkpoint": str(tmp_path / "mm")}, {"image": np.random.rand(6, 8), "text": np.random.rand(6, 3)}
    if kind == "Online":
        return {"kind": kind, "spec": SPEC, "num_peers": 2}, x
    if kind == "Distributed":
        request.getfixturevalue("ray_session")
        return {"kind": kind, "checkpoint": ckpt, "plan": 2, "stage_num_cpus": 0.25}, x
    return {"kind": kind, "checkpoint": ckpt}, x  # Adaptive, Curriculum, Self, Quantized


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_from_plain_config_and_runs(kind, request, tmp_path):
    config, batch = _config(kind, request, tmp_path)
    assert pickle.loads(pickle.dumps(config)) == config  # what a Ray actor receives
    teacher = build_from_config(config)
    try:
        assert isinstance(teacher, Teacher) and teacher.kind == kind
        out = teacher.predict(batch)
        assert isinstance(out, ModelOutput)
        assert out.logits.shape[0] == 6 and out.logits.dtype == torch.float32
        assert torch.isfinite(out.logits).all()
        reqs = teacher.requirements()
        assert isinstance(reqs, Requirements) and reqs.num_cpus > 0 and reqs.memory_bytes >= 0
        described = teacher.describe()
        assert described["kind"] == kind
        json.dumps(described)
    finally:
        if hasattr(teacher, "shutdown"):
            teacher.shutdown()


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(ValueError, match="unknown teacher kind 'Ensembel'; available:"):
        build_from_config({"kind": "Ensembel"})


def test_unknown_param_names_kind_and_accepted(checkpoint_dir):
    with pytest.raises(ValueError, match=r"teacher.kind 'Quantized': unknown params \['bits'\]; accepted:.*precision"):
        build_from_config({"kind": "Quantized", "checkpoint": str(checkpoint_dir), "bits": 4})
    with pytest.raises(ValueError, match="needs 'kind'"):
        build_from_config({"checkpoint": str(checkpoint_dir)})


def test_build_with_objects(trained_mlp):
    teacher = build("NeuralNetwork", model=trained_mlp)
    assert teacher.predict(torch.randn(2, 8)).logits.shape == (2, 4)


@pytest.mark.ray
def test_teachers_inside_a_ray_data_actor_pool(ray_session, checkpoint_dir):
    """The shape the soft-target writer uses: an actor builds its replica from a plain config."""
    import ray

    class TeacherActor:
        def __init__(self, config):
            self.teacher = build_from_config(config)

        def __call__(self, batch):
            out = self.teacher.predict(batch["x"])
            return {"top1": out.logits.argmax(-1).numpy()}

    x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    ds = ray.data.from_numpy(x).map(lambda row: {"x": row["data"]})
    for kind in ("Quantized", "Curriculum"):
        config = {"kind": kind, "checkpoint": str(checkpoint_dir)}
        rows = ds.map_batches(
            TeacherActor, fn_constructor_kwargs={"config": config}, batch_size=16,
            compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.25,
        ).take_all()
        assert len(rows) == 64
