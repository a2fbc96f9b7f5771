"""Sizing the teacher actor pool from the teacher's `Requirements` and the cluster's nodes.

Each pool actor reserves the GPUs the teacher asks for (at least the configured `num_gpus`) and,
on CPU, the CPUs too (at least `num_cpus`); a GPU actor keeps the configured `num_cpus`, since 0
is how a user lets the GPU carry it. Room must also remain for the actors a replica starts itself (pipeline stages,
tensor-parallel peers, on the same node when the teacher says so). A pool that cannot be placed
is refused here, before any data is read, instead of waiting forever for resources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple, Sequence

from raykd.teachers.base import Requirements

__all__ = ["Node", "PoolPlan", "cluster_nodes", "plan_pool", "replicas_that_fit"]

_EPS = 1e-9  # 4 × 0.5 CPU must fit 2 CPUs despite float rounding


@dataclass(frozen=True)
class Node:
    """A node's total Ray resources."""

    cpus: float
    gpus: float = 0.0
    memory_bytes: float = 0.0


class PoolPlan(NamedTuple):
    size: int
    num_cpus: float
    """per pool actor"""
    num_gpus: float


def cluster_nodes() -> list[Node]:
    """The alive nodes of the Ray cluster this process is connected to."""
    import ray

    if not ray.is_initialized():
        ray.init()
    return [
        Node(n["Resources"].get("CPU", 0.0), n["Resources"].get("GPU", 0.0), n["Resources"].get("memory", 0.0))
        for n in ray.nodes()
        if n.get("Alive")
    ]


def _count(have: float, need: float) -> float:
    return math.inf if need <= 0 else math.floor(have / need + _EPS)


def _holds(node: Node, cpus: float, gpus: float, memory: float) -> float:
    return min(_count(node.cpus, cpus), _count(node.gpus, gpus), _count(node.memory_bytes, memory))


def replicas_that_fit(req: Requirements, nodes: Sequence[Node]) -> int:
    """How many replicas the nodes hold: per node when the replica's actors must share one,
    otherwise by cluster totals (each actor still has to fit on some node)."""
    if req.same_node:
        return int(sum(min(_holds(n, req.total_cpus, req.total_gpus, req.total_memory_bytes), 1 << 30) for n in nodes))
    for actor in (req, *req.helpers):
        if not any(_holds(n, actor.num_cpus, actor.num_gpus, actor.memory_bytes) >= 1 for n in nodes):
            return 0
    whole = Node(sum(n.cpus for n in nodes), sum(n.gpus for n in nodes), sum(n.memory_bytes for n in nodes))
    return int(min(_holds(whole, req.total_cpus, req.total_gpus, req.total_memory_bytes), 1 << 30))


def _amount(cpus: float, gpus: float, memory: float) -> str:
    return f"{gpus:g} GPU, {cpus:g} CPU, {memory / 2**30:.2f} GiB memory"


def plan_pool(
    requirements: Requirements | None, pool_size: int, num_cpus: float, num_gpus: float, nodes: Sequence[Node] | None = None
) -> PoolPlan:
    """The pool's size and per-actor resources; raises when `pool_size` replicas do not fit.

    The pool actor takes the larger of the teacher's need and the configured `num_gpus`, and of
    `num_cpus` when it has no GPU; `requirements=None` checks the configured actor alone.
    """
    req = requirements or Requirements(num_cpus=0.0)
    gpus = max(num_gpus, req.num_gpus)
    own = replace(req, num_cpus=num_cpus if gpus > 0 else max(num_cpus, req.num_cpus), num_gpus=gpus)
    nodes = cluster_nodes() if nodes is None else list(nodes)
    fits = replicas_that_fit(own, nodes)
    if pool_size > fits:
        where = f" on one node ({1 + len(own.helpers)} actors)" if own.same_node else ""
        largest = max(nodes, key=lambda n: (n.gpus, n.cpus, n.memory_bytes), default=Node(0.0))
        has = (
            f"{len(nodes)} node(s), in all {_amount(sum(n.cpus for n in nodes), sum(n.gpus for n in nodes), sum(n.memory_bytes for n in nodes))}"
            f"; largest node {_amount(largest.cpus, largest.gpus, largest.memory_bytes)}"
        )
        fix = f"lower soft_targets.pool_size to {fits}" if fits else "give the cluster a node that holds one replica, or a smaller teacher"
        raise ValueError(
            f"soft_targets.pool_size {pool_size}: the teacher needs {_amount(own.total_cpus, own.total_gpus, own.total_memory_bytes)}"
            f" per replica{where}, the cluster has {has}, so it holds {fits} replica(s); {fix}"
        )
    return PoolPlan(pool_size, own.num_cpus, own.num_gpus)
