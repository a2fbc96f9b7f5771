"""The teacher's requirements size the actor pool; a teacher the cluster cannot hold is refused first."""

from __future__ import annotations

import functools

import pytest

from raykd.models import build_model
from raykd.soft_targets.sizing import Node, PoolPlan, plan_pool, replicas_that_fit
from raykd.teachers import DistributedTeacher, Requirements

GIB = 2**30
RANK = Requirements(num_cpus=1.0, num_gpus=1.0, memory_bytes=GIB)
TWO_GPU_REPLICA = Requirements(1.0, 1.0, GIB, helpers=(RANK,), same_node=True)  # 2 tensor-parallel ranks


def test_same_node_replicas_count_per_node():
    assert replicas_that_fit(TWO_GPU_REPLICA, [Node(16, 4, 64 * GIB), Node(16, 2, 64 * GIB)]) == 3
    assert replicas_that_fit(TWO_GPU_REPLICA, [Node(16, 1, 64 * GIB)] * 4) == 0  # 4 GPUs, never 2 on one node


def test_helpers_anywhere_count_by_cluster_totals():
    stages = Requirements(0.25, 0.0, 0, helpers=(RANK, RANK))  # pipeline stages may sit on any node
    assert replicas_that_fit(stages, [Node(16, 1, 64 * GIB)] * 4) == 2


def test_the_pool_actor_takes_what_the_teacher_needs():
    # A GPU actor keeps the configured CPUs (0 lets the GPU carry it); a CPU actor gets the teacher's.
    assert plan_pool(TWO_GPU_REPLICA, 2, num_cpus=0.0, num_gpus=0.0, nodes=[Node(16, 4, 64 * GIB)]) == PoolPlan(2, 0.0, 1.0)
    assert plan_pool(Requirements(num_cpus=1.0), 1, num_cpus=0.5, num_gpus=0.0, nodes=[Node(2.0)]) == PoolPlan(1, 1.0, 0.0)
    assert plan_pool(None, 4, num_cpus=0.5, num_gpus=0.0, nodes=[Node(2.0)]) == PoolPlan(4, 0.5, 0.0)


def test_a_teacher_that_cannot_fit_is_refused_with_the_numbers():
    with pytest.raises(ValueError) as info:
        plan_pool(TWO_GPU_REPLICA, 1, 0.5, 0.0, nodes=[Node(16, 1, 64 * GIB)] * 2)
    assert str(info.value) == (
        "soft_targets.pool_size 1: the teacher needs 2 GPU, 1.5 CPU, 2.00 GiB memory per replica on one node (2 actors), "
        "the cluster has 2 node(s), in all 2 GPU, 32 CPU, 128.00 GiB memory; largest node 1 GPU, 16 CPU, 64.00 GiB memory, "
        "so it holds 0 replica(s); give the cluster a node that holds one replica, or a smaller teacher"
    )
    with pytest.raises(ValueError, match="holds 1 replica"):
        plan_pool(Requirements(1.0, 0.0, 300 * GIB), 2, 0.5, 0.0, nodes=[Node(64, 0, 500 * GIB)])


@pytest.mark.ray
def test_a_pool_too_big_for_the_cluster_is_refused_before_any_work(ray_session, tmp_path):
    """On the real 2-CPU test cluster: 2 replicas of 2 ranks × 0.75 CPU need 3 CPUs."""
    import ray

    from raykd.soft_targets import SoftTargetMeta, generate_soft_targets
    from raykd.teachers import build_from_config

    teacher = DistributedTeacher(build_model({"type": "mlp", "in_features": 8, "hidden": [16], "num_classes": 4}),
                                 backend="tensor", tp_size=2, stage_num_cpus=0.75)
    meta = SoftTargetMeta(teacher=teacher.describe(), teacher_hash="x", num_classes=4, k=2)
    ds = ray.data.range(8)
    with pytest.raises(ValueError, match=r"pool_size 2: the teacher needs 0 GPU, 1.5 CPU, .* holds 1 replica\(s\); lower soft_targets.pool_size to 1"):
        generate_soft_targets(ds, functools.partial(build_from_config, {"kind": "Distributed"}), tmp_path / "soft", meta,
                              pool_size=2, requirements=teacher.requirements())
    assert not (tmp_path / "soft").exists()
