"""Distributed backend='tensor': 2 gloo ranks on Ray actors give the unsharded teacher's logits,
alone and as a member of the soft-target actor pool; the split plan and DeepSpeed's wiring."""

from __future__ import annotations

import functools

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from raykd.models import build_model, set_input_stats
from raykd.teachers import DistributedTeacher, build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members
from raykd.teachers.tensor_parallel import deepspeed_policy, tensor_parallel_plan

EVEN = {"type": "mlp", "in_features": 8, "hidden": [16, 16, 16], "num_classes": 4}
# Three Linears: the head has no row partner, so its column shards are gathered.
ODD = {"type": "mlp", "in_features": 64, "hidden": [32, 16], "num_classes": 10, "standardize": True}


def _odd_model() -> nn.Module:
    torch.manual_seed(0)
    return set_input_stats(build_model(ODD), torch.linspace(0, 8, 64), torch.linspace(1, 4, 64)).eval()


def test_linears_pair_column_then_row():
    assert tensor_parallel_plan(build_model(EVEN), 2) == {
        "body.layer1.0": "colwise", "body.layer2.0": "rowwise", "body.layer3.0": "colwise", "head": "rowwise",
    }
    assert tensor_parallel_plan(build_model(ODD), 2) == {
        "body.layer1.0": "colwise", "body.layer2.0": "rowwise", "head": "colwise_gather",
    }


def test_a_module_that_mixes_features_gets_whole_inputs():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.LayerNorm(16), nn.Linear(16, 4))
    assert tensor_parallel_plan(model, 2) == {"0": "colwise_gather", "3": "colwise_gather"}


def test_a_width_the_ranks_cannot_share_is_a_clear_error():
    with pytest.raises(ValueError, match="body.layer1.0 has 16 output features, not divisible by tp_size 3"):
        DistributedTeacher(build_model(EVEN), backend="tensor", tp_size=3)


def test_tensor_parallel_refuses_features_and_one_rank():
    with pytest.raises(ValueError, match="returns logits only"):
        DistributedTeacher(build_model(EVEN), backend="tensor", layers=["body.layer1"])
    with pytest.raises(ValueError, match="tp_size >= 2"):
        DistributedTeacher(build_model(EVEN), backend="tensor", tp_size=1)


def test_deepspeed_gets_the_same_split_by_its_own_names():
    model = build_model(EVEN)
    assert deepspeed_policy(model, tensor_parallel_plan(model, 2)) == {type(model): ("layer2.0", ".head")}
    with pytest.raises(ValueError, match="use backend='tensor'"):
        DistributedTeacher(_odd_model(), backend="deepspeed", tp_size=2)


def test_deepspeed_tensor_parallel_needs_cuda_before_any_actor():
    teacher = DistributedTeacher(build_model(EVEN), backend="deepspeed", tp_size=2)
    reqs = teacher.requirements()
    assert (reqs.num_gpus, len(reqs.helpers), reqs.total_gpus, reqs.same_node) == (1.0, 1, 2.0, True)
    if torch.cuda.is_available():
        pytest.skip("the GPU test below runs it")
    with pytest.raises(RuntimeError, match="runs on CUDA GPUs"):
        teacher.predict(torch.randn(2, 8))
    assert teacher._group is None  # refused before starting a rank


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
@pytest.mark.parametrize("backend", ["tensor", "deepspeed"])
def test_tensor_parallel_on_two_gpus(ray_session, backend):
    if backend == "deepspeed":
        pytest.importorskip("deepspeed")
    torch.manual_seed(0)
    model = build_model(EVEN).eval()
    teacher = DistributedTeacher(model, backend=backend, tp_size=2, stage_num_gpus=1.0, dtype="fp32")
    x = torch.randn(6, 8)
    try:
        with torch.no_grad():
            torch.testing.assert_close(teacher.predict(x).logits.cpu(), model(x), atol=1e-3, rtol=1e-3)
        assert {i["device"] for i in teacher.rank_info()} == {"cuda:0"}
    finally:
        teacher.shutdown()


@pytest.mark.ray
def test_two_ranks_give_the_unsharded_logits(ray_session, tmp_path):
    model = _odd_model()
    save_members(tmp_path, [MemberCheckpoint("big", ODD, model)])
    teacher = build_from_config(
        {"kind": "Distributed", "checkpoint": str(tmp_path), "backend": "tensor", "tp_size": 2, "stage_num_cpus": 0.25}
    )
    x = torch.randn(10, 64) * 4
    try:
        with torch.no_grad():
            torch.testing.assert_close(teacher.predict(x).logits, model(x), rtol=1e-5, atol=1e-6)
        ranks = teacher.rank_info()
        assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["pid"] != ranks[1]["pid"]
        full = sum(p.numel() * 4 for p in model.parameters())
        assert all(r["param_bytes"] < 0.6 * full for r in ranks)  # each rank holds about half
    finally:
        teacher.shutdown()


@pytest.mark.ray
@pytest.mark.parametrize("backend", ["tensor", "zero"])  # zero: ZeRO-Inference over the same rank group
def test_a_sharded_replica_in_the_soft_target_pool(ray_session, tmp_path, backend):
    from raykd.data import InputSpec, read_inputs, resolve_inputs, to_numpy
    from raykd.soft_targets import SoftTargetMeta, generate_soft_targets, teacher_fingerprint

    if backend == "zero":
        pytest.importorskip("deepspeed")
    model = _odd_model()
    save_members(tmp_path / "teacher", [MemberCheckpoint("big", ODD, model)])
    config = {"kind": "Distributed", "checkpoint": str(tmp_path / "teacher"), "backend": backend, "tp_size": 2, "stage_num_cpus": 0.25}
    teacher = build_from_config(config)  # in the driver only for its description: no ranks start
    meta = SoftTargetMeta(teacher=teacher.describe(), teacher_hash=teacher_fingerprint(teacher), num_classes=10, k=3, full_logits=True)
    ds = read_inputs(resolve_inputs(InputSpec()), limit=64).materialize()
    run = generate_soft_targets(
        ds, functools.partial(build_from_config, config), tmp_path / "soft", meta,
        batch_size=32, num_cpus=0.25, requirements=teacher.requirements(),
    )
    assert run.rows == 64
    table = pq.read_table(tmp_path / "soft").sort_by("id")
    logits = np.stack(table.column("logits").to_numpy(zero_copy_only=False))
    with torch.no_grad():
        expected = model(torch.as_tensor(to_numpy(ds)["x"]).float()).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
