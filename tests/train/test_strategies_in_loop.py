"""Every strategy plugs into the student loop by name, with features taken by layer name.

The pieces are the stages' own: the strategy arguments, the default teacher layers, an
Ensemble teacher built from a checkpoint with `build_from_config`, and the loop's `student_loss`.
"""

from __future__ import annotations

import pytest
import torch

from raykd import strategies
from raykd.config import StrategyConfig
from raykd.models import build_model
from raykd.outputs import FeatureExtractor
from raykd.teachers import build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members
from raykd.stages.student import default_teacher_layers, strategy_arguments
from raykd.stages.teachers import TeacherStage
from raykd.train.loop import default_ce_weight, needs_online_teacher, student_loss

# Task-specific losses need transformer hidden states or detection heads, not a digits classifier.
TASK_SPECIFIC = {"DistilBERT", "HiddenStateDistillation", "DetectionDistillation"}
SPATIAL = {"AttentionBased", "NeuronSelectivity", "FlowBased", "SelfDistillation"}
HYBRID = {"components": [{"name": "ResponseBased", "params": {"temperature": 4.0}}, {"name": "RelationBased"}]}


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    specs = [
        {"type": "cnn", "in_features": 64, "channels": [8, 16], "embed": 16, "num_classes": 10},
        {"type": "mlp", "in_features": 64, "hidden": [32], "num_classes": 10},
    ]
    members = [MemberCheckpoint(f"member{i}", s, build_model(s).eval()) for i, s in enumerate(specs)]
    return save_members(tmp_path_factory.mktemp("teachers"), members), members


@pytest.mark.parametrize("name", [n for n in strategies.available() if n not in TASK_SPECIFIC])
def test_strategy_trains_a_student_by_name(name, teacher_checkpoint):
    directory, members = teacher_checkpoint
    torch.manual_seed(0)
    model = build_model({"type": "cnn", "in_features": 64, "channels": [8, 16], "embed": 16, "num_classes": 10})
    layers = model.feature_layers[:2] if name in SPATIAL else model.feature_layers
    strategy = strategies.build(name, **strategy_arguments(StrategyConfig(name=name, params=HYBRID if name == "Hybrid" else {}), n_data=64))
    teacher, student = None, model
    if needs_online_teacher(strategy):
        teacher = build_from_config(
            {"kind": "Ensemble", "checkpoint": str(directory), "layers": default_teacher_layers(_stage(directory, members), list(layers))}
        )
        student = FeatureExtractor(model, layers)
    g = torch.Generator().manual_seed(1)
    batch = {"id": torch.arange(16), "x": torch.rand(16, 64, generator=g), "label": torch.arange(16) % 10}
    logits = build_from_config({"kind": "Ensemble", "checkpoint": str(directory)}).predict(batch["x"]).logits
    batch["topk_values"], batch["topk_indices"] = logits.topk(10, dim=1)
    batch["topk_values"] = batch["topk_values"].half()

    with torch.no_grad():
        student_loss(student, strategy, batch, 10, teacher)  # builds shape-dependent modules
    ce_weight = default_ce_weight(strategy)
    if teacher is not None:
        strategy.prepare(lambda: [teacher.predict(batch["x"])])
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam([*model.parameters(), *strategy.parameters()], lr=1e-2)
    loss = student_loss(student, strategy, batch, 10, teacher, ce_weight=ce_weight)["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    if teacher is not None:
        assert all(p.grad is None for p in teacher.parameters())


def _stage(directory, members) -> TeacherStage:
    return TeacherStage({"kind": "Ensemble", "checkpoint": str(directory)}, "ensemble", "Ensemble", 0, 0.0, members, [], str(directory))


def test_feature_only_strategies_get_cross_entropy_at_their_default_weight(teacher_checkpoint):
    directory, members = teacher_checkpoint
    torch.manual_seed(0)
    model = build_model({"type": "mlp", "in_features": 64, "hidden": [16], "num_classes": 10})
    teacher = build_from_config({"kind": "Ensemble", "checkpoint": str(directory), "layers": ["member1.body.layer1"]})
    student = FeatureExtractor(model, ["body.layer1"])
    batch = {"id": torch.arange(8), "x": torch.rand(8, 64), "label": torch.arange(8)}
    strategy = strategies.build("SimilarityPreserving")
    with torch.no_grad():
        expected = strategy(student(batch["x"]), teacher.predict(batch["x"])) + torch.nn.functional.cross_entropy(
            model(batch["x"]), batch["label"]
        )
        loss = student_loss(student, strategy, batch, 10, teacher, ce_weight=default_ce_weight(strategy))["loss"]
        assert float(loss) == pytest.approx(float(expected), rel=1e-6)
