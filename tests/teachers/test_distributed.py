"""Distributed: pipeline stages on Ray actors give the unsharded logits; bad plans are errors."""

from __future__ import annotations

import pytest
import torch

from raykd.models import build_model
from raykd.teachers import DistributedTeacher, build_from_config, make_shard_plan, pipeline_layers


DEEP = {"type": "mlp", "in_features": 8, "hidden": [16, 16, 16], "num_classes": 4}
LAYERS = ["body.layer1", "body.layer2", "body.layer3", "head"]


def test_mlp_is_a_chain_of_named_layers():
    assert list(pipeline_layers(build_model(DEEP))) == LAYERS


def test_even_split():
    assert make_shard_plan(LAYERS, 2) == [["body.layer1", "body.layer2"], ["body.layer3", "head"]]
    assert make_shard_plan(LAYERS, 3) == [["body.layer1", "body.layer2"], ["body.layer3"], ["head"]]


@pytest.mark.parametrize(
    "plan,message",
    [
        ([["body.layer1", "body.layer2"], ["head"]], r"does not cover layers \['body.layer3'\]"),
        ([["body.layer1", "body.layer2"], ["body.layer2", "body.layer3", "head"]], r"covers layer 'body.layer2' twice"),
        ([["body.layer1"], ["body.layer9"]], r"unknown layers \['body.layer9'\]"),
        ([["body.layer2", "body.layer1"], ["body.layer3", "head"]], "keep forward order"),
        ([[], LAYERS], "empty stage"),
        (5, "5 stages for 4 layers"),
    ],
)
def test_bad_plans_are_clear_errors(plan, message):
    with pytest.raises(ValueError, match=message):
        make_shard_plan(LAYERS, plan)


def test_a_module_that_is_no_chain_is_refused():
    class Branchy(torch.nn.Module):
        num_classes = 2

        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="pipeline_layers"):
        DistributedTeacher(Branchy(), plan=1)


@pytest.mark.ray
def test_pipeline_stages_match_the_unsharded_model(ray_session, tmp_path):
    from raykd.teachers.checkpoint import MemberCheckpoint, save_members

    torch.manual_seed(0)
    model = build_model(DEEP).eval()
    save_members(tmp_path, [MemberCheckpoint("big", DEEP, model)])
    x = torch.randn(10, 8)
    teacher = build_from_config(
        {"kind": "Distributed", "checkpoint": str(tmp_path), "plan": [["body.layer1"], ["body.layer2", "body.layer3", "head"]],
         "num_micro_batches": 3, "stage_num_cpus": 0.25, "layers": ["body.layer1", "body.layer3"]}
    )
    try:
        out = teacher.predict(x)
        with torch.no_grad():
            torch.testing.assert_close(out.logits, model(x), atol=1e-6, rtol=0)
            torch.testing.assert_close(out.features["body.layer1"], model.body.layer1(x))
        info = teacher.stage_info()
        assert [i["layers"] for i in info] == teacher.plan
        assert info[0]["pid"] != info[1]["pid"]  # two actor processes
        first_stage = sum(p.numel() * 4 for p in model.body.layer1.parameters())
        assert info[0]["param_bytes"] == first_stage  # a stage holds only its own weights
        assert teacher.requirements().memory_bytes == 0  # the driver holds none
    finally:
        teacher.shutdown()


@pytest.mark.ray
def test_pipeline_from_an_in_memory_model(ray_session, trained_mlp):
    teacher = DistributedTeacher(trained_mlp, plan=2, num_micro_batches=2, stage_num_cpus=0.25)
    try:
        x = torch.randn(7, 8)
        with torch.no_grad():
            torch.testing.assert_close(teacher.predict(x).logits, trained_mlp(x), atol=1e-6, rtol=0)
    finally:
        teacher.shutdown()


def test_deepspeed_on_one_gpu_needs_cuda(trained_mlp):
    teacher = DistributedTeacher(trained_mlp, backend="deepspeed")
    if torch.cuda.is_available():
        pytest.skip("covered by the GPU tests")
    with pytest.raises(RuntimeError, match="runs on CUDA GPUs"):
        teacher.predict(torch.randn(2, 8))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_deepspeed_on_one_gpu(trained_mlp):
    pytest.importorskip("deepspeed")
    teacher = DistributedTeacher(trained_mlp, backend="deepspeed", dtype="fp32")
    x = torch.randn(6, 8)
    with torch.no_grad():
        expected = trained_mlp(x)
    torch.testing.assert_close(teacher.predict(x).logits.cpu(), expected, atol=1e-3, rtol=1e-3)


@pytest.mark.ray
def test_pipeline_stages_of_a_standardizing_mlp_give_its_logits(ray_session, tmp_path):
    from raykd.models import build_model, set_input_stats
    from raykd.teachers import build_from_config
    from raykd.teachers.checkpoint import MemberCheckpoint, save_members

    torch.manual_seed(0)
    spec = {"type": "mlp", "in_features": 6, "hidden": [8, 8], "num_classes": 3, "standardize": True}
    model = set_input_stats(build_model(spec), torch.arange(6.0) * 10, torch.arange(1.0, 7.0)).eval()
    save_members(tmp_path, [MemberCheckpoint("member0", spec, model)])
    x = torch.randn(5, 6) * 10
    for teacher in (DistributedTeacher(model, plan=2), build_from_config({"kind": "Distributed", "checkpoint": str(tmp_path), "plan": 3})):
        torch.testing.assert_close(teacher.predict(x).logits, model(x), rtol=1e-5, atol=1e-5)
