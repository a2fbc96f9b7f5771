"""Tensor parallelism over a group of Ray actors (Megatron-style column/row splits).

One replica is `tp_size` ranks of one `torch.distributed` group (gloo on CPU, NCCL on GPU): rank 0
lives in the calling process (the soft-target pool's actor) and starts ranks 1.. as Ray actors on
its own node. Every rank holds a 1/tp_size slice of each split `nn.Linear`; a batch goes to all
ranks and the collectives inside the forward give every rank the full logits (Shoeybi et al. 2019,
Megatron-LM: a column-split layer feeds a row-split one, one all-reduce per pair).

The split is a plan `{linear name: style}` derived from the model's chain of layers (or the
model's own `tensor_parallel_plan()`); two engines apply it: PyTorch's tensor-parallel API
(`parallelize_module` on a `DeviceMesh`, CPU or GPU) and DeepSpeed's `init_inference` (GPU only).
A third engine, "zero", needs no plan: the same group runs ZeRO-Inference (Aminabadi et al. 2022,
DeepSpeed-Inference), each rank holding 1/tp_size of every parameter (ZeRO stage 3), all-gathered
layer by layer inside the forward, optionally offloaded to CPU memory or NVMe on GPU ranks.
"""

from __future__ import annotations

import copy
import os
from datetime import timedelta
from typing import Any, Iterator

import torch
from torch import nn

from raykd.deepspeed_cpu import import_deepspeed

__all__ = ["STYLES", "tensor_parallel_plan", "deepspeed_policy", "TensorParallelRank", "TensorParallelGroup"]

STYLES = ("colwise", "rowwise", "colwise_gather")
"""colwise: output features split; rowwise: input features split, outputs all-reduced;
colwise_gather: output features split, then all-gathered (a split layer with no row partner)."""

# Modules that act on each feature alone, so they run on a column shard unchanged.
_ELEMENTWISE = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.Dropout, nn.Identity)
_TIMEOUT = timedelta(seconds=600)  # rank start-up includes Ray worker start and reading weights


def _leaves(name: str, module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The leaf modules of a chain layer in forward order; a composite that is not an
    `nn.Sequential` has no known order inside, so it stays whole (and unsplit)."""
    if isinstance(module, nn.Sequential):
        for child_name, child in module.named_children():
            yield from _leaves(f"{name}.{child_name}", child)
    else:
        yield name, module


def _derive_plan(model: nn.Module) -> dict[str, str]:
    from raykd.teachers.distributed import pipeline_layers

    plan: dict[str, str] = {}
    open_column: str | None = None  # a column-split Linear still waiting for its row partner
    for layer_name, layer in pipeline_layers(model).items():
        for name, leaf in _leaves(layer_name, layer):
            if isinstance(leaf, nn.Linear):
                plan[name] = "colwise" if open_column is None else "rowwise"
                open_column = name if open_column is None else None
            elif open_column is not None and not isinstance(leaf, _ELEMENTWISE):
                plan[open_column] = "colwise_gather"  # this module needs every feature
                open_column = None
    if open_column is not None:
        plan[open_column] = "colwise_gather"
    return plan


def tensor_parallel_plan(model: nn.Module, tp_size: int) -> dict[str, str]:
    """`{module name: style}` for `model` split `tp_size` ways, checked against its Linear sizes.

    A model may give its own with `tensor_parallel_plan()`; otherwise Linear layers along its
    pipeline chain pair up column → row, with only elementwise modules between the two.
    """
    own = getattr(model, "tensor_parallel_plan", None)
    plan = dict(own()) if callable(own) else _derive_plan(model)
    if not plan:
        raise ValueError(f"tensor parallel: {type(model).__name__} has no nn.Linear layer to split; use backend='pipeline'")
    modules = dict(model.named_modules())
    for name, style in plan.items():
        if style not in STYLES:
            raise ValueError(f"tensor parallel plan: {name} has style {style!r}; use one of {STYLES}")
        linear = modules.get(name)
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"tensor parallel plan names {name!r}, which is not an nn.Linear of the model")
        split = linear.in_features if style == "rowwise" else linear.out_features
        if split % tp_size:
            side = "input" if style == "rowwise" else "output"
            raise ValueError(
                f"tensor parallel: {name} has {split} {side} features, not divisible by tp_size {tp_size}; "
                "pick a tp_size that divides every split layer's width"
            )
    return plan


def deepspeed_policy(model: nn.Module, plan: dict[str, str]) -> dict[type, tuple[str, ...]]:
    """The same split as DeepSpeed's `injection_policy`: `{model class: all-reduce (row) Linears}`.

    DeepSpeed splits every other Linear of the class by columns and never gathers one, so every
    column split needs its row partner. It names a Linear `<parent attribute>.<attribute>`.
    """
    gathered = [n for n, s in plan.items() if s == "colwise_gather"]
    if gathered or len(plan) != sum(1 for m in model.modules() if isinstance(m, nn.Linear)):
        raise ValueError(
            f"backend='deepspeed' splits every Linear of {type(model).__name__} in column/row pairs; "
            f"this model has unpaired or unsplit Linears ({gathered or 'outside the chain'}): use backend='tensor'"
        )

    def ds_name(name: str) -> str:
        parent, _, attribute = name.rpartition(".")
        return f"{parent.rpartition('.')[2]}.{attribute}"

    return {type(model): tuple(ds_name(n) for n, s in plan.items() if s == "rowwise")}


def materialize(build: dict[str, Any]) -> nn.Module:
    """The full model on CPU from `{"module": m}` (copied: splitting changes it in place) or
    `{"spec": ..., "weights": path}`."""
    if "module" in build:
        return copy.deepcopy(build["module"]).eval()
    from safetensors.torch import load_file

    from raykd.models import build_model

    model = build_model(build["spec"])
    model.load_state_dict(load_file(build["weights"]))
    return model.eval()


class TensorParallelRank:
    """One rank: joins the group, holds its slice of the model, runs the forward in step with the others."""

    def __init__(
        self,
        rank: int,
        world_size: int,
        store: "torch.distributed.Store | tuple[str, int]",
        build: dict[str, Any],
        plan: dict[str, str],
        device: str = "cpu",
        engine: str = "torch",
        dtype: str = "fp32",
        num_threads: int | None = None,
        offload: dict[str, Any] | None = None,
    ) -> None:
        import torch.distributed as dist

        if num_threads is not None:  # rank 0 keeps the threads its host process chose
            torch.set_num_threads(max(1, num_threads))
        if dist.is_initialized():
            raise RuntimeError(
                f"tensor-parallel rank {rank}: this process already belongs to a torch.distributed group "
                f"(world size {dist.get_world_size()}); run the teacher in its own actor (the soft-target pool "
                "does) or shutdown() the other tensor-parallel teacher first"
            )
        if device == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError(f"tensor-parallel rank {rank} was given GPUs but sees no CUDA device")
            torch.cuda.set_device(0)  # Ray shows each rank actor only its own GPU
        if isinstance(store, tuple):
            store = dist.TCPStore(store[0], store[1], world_size, is_master=False, timeout=_TIMEOUT)
        backend = "nccl" if device == "cuda" else "gloo"
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=_TIMEOUT)
        self.rank, self.device = rank, torch.device(device)
        try:
            model = materialize(build)
            if engine == "deepspeed":
                self.model, self.dtype = _deepspeed_engine(model, plan, world_size, dtype), _DTYPES[dtype]
            elif engine == "zero":
                self.model, self.dtype = _zero_engine(model, device, dtype, offload), _DTYPES[dtype]
            else:
                self.model, self.dtype = _torch_parallel(model.to(self.device), plan, device, world_size), torch.float32
        except BaseException:
            self.close()  # leave the process free to join another group
            raise

    def forward(self, x: torch.Tensor) -> torch.Tensor | None:
        """Logits on rank 0 (on CPU); the other ranks return None (their copy is the same)."""
        with torch.inference_mode():
            x = x.to(self.device)
            out = self.model(x.to(self.dtype) if x.is_floating_point() else x)
        logits = getattr(out, "logits", out)
        return logits.float().cpu() if self.rank == 0 else None

    def local_param_bytes(self) -> int:
        """Bytes of parameters this rank holds (its slices plus the unsplit layers; its ZeRO partition,
        wherever it is offloaded)."""
        from torch.distributed.tensor import DTensor

        local = [p.to_local() if isinstance(p, DTensor) else getattr(p, "ds_tensor", p) for p in self.model.parameters()]
        return int(sum(t.numel() * t.element_size() for t in local))

    def info(self) -> dict[str, Any]:
        return {"rank": self.rank, "pid": os.getpid(), "param_bytes": self.local_param_bytes(), "device": str(self.device)}

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def _torch_parallel(model: nn.Module, plan: dict[str, str], device: str, world_size: int) -> nn.Module:
    from torch.distributed.device_mesh import DeviceMesh
    from torch.distributed.tensor import Replicate
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    styles = {"colwise": ColwiseParallel, "rowwise": RowwiseParallel, "colwise_gather": lambda: ColwiseParallel(output_layouts=Replicate())}
    mesh = DeviceMesh(device, list(range(world_size)))
    return parallelize_module(model, mesh, {name: styles[style]() for name, style in plan.items()})


def _deepspeed_engine(model: nn.Module, plan: dict[str, str], world_size: int, dtype: str) -> nn.Module:
    import deepspeed  # lazy: only GPU ranks pay for it

    deepspeed.init_distributed(dist_backend="nccl")  # adopts the group this rank already joined
    holder = nn.ModuleDict({"model": model})  # DeepSpeed looks for the policy's class among children
    engine = deepspeed.init_inference(
        holder, tensor_parallel={"tp_size": world_size}, dtype=_DTYPES[dtype],
        injection_policy=deepspeed_policy(model, plan), replace_with_kernel_inject=False,
    )
    return engine.module["model"]


def _zero_engine(model: nn.Module, device: str, dtype: str, offload: dict[str, Any] | None) -> nn.Module:
    """ZeRO-Inference's recipe: a stage-3 engine with no optimizer, its module in eval mode.

    `zero.Init(module=...)` partitions the host copy in place (onto the GPU, or its offload target)
    before the engine sees it, so no GPU ever holds the whole model; the host does, at start-up."""
    os.environ.setdefault("LOCAL_RANK", "0")  # DeepSpeed insists on it; Ray shows each rank one device
    deepspeed = import_deepspeed()  # lazy: only ZeRO ranks pay for it

    deepspeed.init_distributed(dist_backend="nccl" if device == "cuda" else "gloo")  # adopts the joined group
    zero: dict[str, Any] = {"stage": 3, **({"offload_param": offload} if offload else {})}
    config = {
        "train_micro_batch_size_per_gpu": 1,
        "zero_optimization": zero,
        "fp16": {"enabled": dtype == "fp16"},
        "bf16": {"enabled": dtype == "bf16"},
        "steps_per_print": 2**31 - 1,
    }
    deepspeed.zero.Init(module=model, config_dict_or_path=config)
    engine = deepspeed.initialize(model=model, config=config, dist_init_required=False)[0]
    engine.module.eval()
    return engine.module


class TensorParallelGroup:
    """Rank 0 in this process plus `tp_size - 1` Ray actors pinned to this node; `__call__(x)` → logits."""

    def __init__(
        self,
        build: dict[str, Any],
        plan: dict[str, str],
        tp_size: int,
        rank_num_cpus: float,
        rank_num_gpus: float,
        engine: str = "torch",
        dtype: str = "fp32",
        offload: dict[str, Any] | None = None,
    ) -> None:
        import ray
        import torch.distributed as dist
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if not ray.is_initialized():
            ray.init()
        device = "cuda" if rank_num_gpus > 0 else "cpu"
        host = ray.util.get_node_ip_address()
        store = dist.TCPStore(host, 0, tp_size, is_master=True, timeout=_TIMEOUT, wait_for_workers=False)
        # Peers share this node: every layer pair is an all-reduce, too chatty for the network.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        threads = max(1, int(rank_num_cpus))
        remote = ray.remote(TensorParallelRank).options(num_cpus=rank_num_cpus, num_gpus=rank_num_gpus, scheduling_strategy=here)
        self.peers = [
            remote.remote(rank, tp_size, (host, store.port), build, plan, device, engine, dtype, threads, offload)
            for rank in range(1, tp_size)
        ]
        try:
            self.local = TensorParallelRank(0, tp_size, store, build, plan, device, engine, dtype, offload=offload)
            ray.get([p.info.remote() for p in self.peers])  # surfaces a peer's start-up error
        except BaseException:
            self.shutdown()
            raise

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import ray

        x_ref = ray.put(x.cpu())
        pending = [p.forward.remote(x_ref) for p in self.peers]
        logits = self.local.forward(x)
        ray.get(pending)  # a failed peer raises here rather than leaving its slice unrun
        return logits

    def info(self) -> list[dict[str, Any]]:
        import ray

        return [self.local.info(), *ray.get([p.info.remote() for p in self.peers])]

    def shutdown(self) -> None:
        import ray

        for peer in self.peers:
            ray.kill(peer)
        self.peers = []
        if getattr(self, "local", None) is not None:
            self.local.close()
            self.local = None
