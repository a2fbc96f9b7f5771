"""Distributed backend='zero' (ZeRO-Inference): 2 gloo ranks, each holding half of every
parameter, give the unsharded teacher's logits (in the soft-target actor pool too: the pool test of
test_tensor_parallel.py runs both backends); offload is a GPU option."""

from __future__ import annotations

import functools

import pytest
import torch

from raykd.models import build_model
from raykd.teachers import DistributedTeacher, build_from_config
from raykd.teachers.checkpoint import MemberCheckpoint, save_members
from tests.teachers.test_tensor_parallel import ODD, _odd_model

pytest.importorskip("deepspeed")


def _config(checkpoint, **extra) -> dict:
    return {"kind": "Distributed", "checkpoint": str(checkpoint), "backend": "zero", "tp_size": 2, "stage_num_cpus": 0.25, **extra}


def test_offload_is_for_gpu_ranks():
    model = build_model(ODD)
    with pytest.raises(ValueError, match="offload_param='cpu' moves parameters off the GPU"):
        DistributedTeacher(model, backend="zero", offload_param="cpu")
    assert DistributedTeacher(model, backend="zero").offload is None
    on_gpu = functools.partial(DistributedTeacher, model, backend="zero", stage_num_gpus=1.0)
    assert on_gpu().offload == {"device": "cpu", "pin_memory": True}
    assert on_gpu(offload_param={"device": "nvme", "nvme_path": "/nvme"}).offload == {"device": "nvme", "nvme_path": "/nvme"}
    with pytest.raises(ValueError, match="nvme_path"):
        on_gpu(offload_param={"device": "nvme"})


def test_each_rank_asks_for_its_share_of_the_parameters():
    model = build_model(ODD)
    reqs = DistributedTeacher(model, backend="zero", tp_size=2, stage_num_cpus=0.25).requirements()
    full = sum(p.numel() * 4 for p in model.parameters()) + sum(b.numel() * 4 for b in model.buffers())
    assert (reqs.memory_bytes, len(reqs.helpers), reqs.helpers[0].memory_bytes, reqs.same_node) == (full // 2, 1, full // 2, True)


@pytest.mark.ray
def test_two_zero_ranks_give_the_unsharded_logits(ray_session, tmp_path):
    import ray

    class RankZero:
        """Rank 0 in an actor, as in the pool: ZeRO-3 leaves DeepSpeed state in its process that
        hangs a later DTensor group there (the tensor-parallel tests share this pytest process).
        Local, so Ray pickles it by value (a worker cannot import a test module)."""

        def __init__(self, config: dict) -> None:
            self.teacher = build_from_config(config)

        def run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[dict]]:
            return self.teacher.predict(x).logits, self.teacher.rank_info()

    model = _odd_model()
    save_members(tmp_path, [MemberCheckpoint("big", ODD, model)])
    host = ray.remote(num_cpus=0.25)(RankZero).remote(_config(tmp_path))
    x = torch.randn(10, 64) * 4
    try:
        logits, ranks = ray.get(host.run.remote(x))
    finally:
        ray.kill(host)
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x), rtol=1e-5, atol=1e-6)
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["pid"] != ranks[1]["pid"]
    full = sum(p.numel() * 4 for p in model.parameters())
    assert all(r["param_bytes"] <= full // 2 + 8 for r in ranks)  # ZeRO-3: half of every tensor, padded


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("offload", ["cpu", "nvme"])
def test_zero_inference_offloaded_on_one_gpu(ray_session, tmp_path, offload):
    model = _odd_model()
    param = {"device": "nvme", "nvme_path": str(tmp_path)} if offload == "nvme" else offload
    teacher = DistributedTeacher(model, backend="zero", tp_size=1, stage_num_gpus=1.0, dtype="fp32", offload_param=param)
    x = torch.randn(6, 64) * 4
    try:
        with torch.no_grad():
            torch.testing.assert_close(teacher.predict(x).logits.cpu(), model(x), atol=1e-3, rtol=1e-3)
        assert teacher.rank_info()[0]["device"] == "cuda:0"
    finally:
        teacher.shutdown()
