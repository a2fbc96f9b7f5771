"""Distributed teacher: a teacher too big for one device.

`backend="pipeline"` (any machine): the model's layers are cut into stages, each stage held by its
own Ray actor (holding only that stage's weights), and a batch is cut into micro-batches that flow
stage to stage as chained ObjectRefs: stage i works on micro-batch m while stage i-1 works on m+1,
so Ray pipelines them (GPipe-style inference, Huang et al. 2019). Built from a checkpoint, each
actor reads only its own tensors from the safetensors file; the driver never holds the weights.
A stage actor given GPUs (`stage_num_gpus`) runs its layers on its GPU.

`backend="tensor"` (CPU or GPU): `tp_size` ranks of one torch.distributed group (gloo, or NCCL
when `stage_num_gpus` > 0), each holding a slice of every split Linear (`raykd.teachers.tensor_parallel`):
rank 0 runs in the calling process (the soft-target pool's actor), the other ranks are Ray actors
on its node.

`backend="deepspeed"` (CUDA): `deepspeed.init_inference`; with `tp_size` > 1 over the ranks of the
same actor group, split by the same plan. `backend="zero"` (CPU or GPU): ZeRO-Inference over the
same rank group, each of the `tp_size` ranks holding 1/tp_size of every parameter (ZeRO stage 3),
gathered layer by layer in the forward; on GPU ranks the partitions are offloaded to CPU memory
(`offload_param`, default) or NVMe. DeepSpeed is imported only on those paths.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from raykd.outputs import ModelOutput
from raykd.teachers.base import Requirements, Teacher
from raykd.teachers.common import base_model, module_bytes, to_tensor
from raykd.teachers.neural_network import freeze
from raykd.teachers.registry import register
from raykd.teachers.tensor_parallel import TensorParallelGroup, deepspeed_policy, tensor_parallel_plan

__all__ = ["DistributedTeacher", "BACKENDS", "pipeline_layers", "make_shard_plan", "StageModule"]

BACKENDS = ("pipeline", "tensor", "deepspeed", "zero")
DTYPES = ("fp16", "bf16", "fp32")


def pipeline_layers(model: nn.Module) -> "OrderedDict[str, nn.Module]":
    """The model as an ordered chain of named layers whose composition is its forward.

    A model may say so itself with `pipeline_layers()`; an `nn.Sequential` (nested ones flattened)
    is its children; a raykd `MLP` is `body.layer1..n`, `head` (its input flattened first).
    """
    own = getattr(model, "pipeline_layers", None)
    if callable(own):
        return OrderedDict(own())
    from raykd.models import MLP

    if isinstance(model, MLP):
        chain = OrderedDict((f"body.{n}", m) for n, m in model.body.named_children())
        chain["head"] = model.head
        return chain
    if isinstance(model, nn.Sequential):
        chain: "OrderedDict[str, nn.Module]" = OrderedDict()
        for name, child in model.named_children():
            if isinstance(child, nn.Sequential) and len(child) > 0 and not hasattr(child, "pipeline_layers"):
                for sub, mod in pipeline_layers(child).items():
                    chain[f"{name}.{sub}"] = mod
            else:
                chain[name] = child
        return chain
    raise TypeError(
        f"cannot cut a {type(model).__name__} into pipeline stages: give it a pipeline_layers() method "
        "returning [(name, module), ...] in forward order, or use an nn.Sequential"
    )


def _input_stats(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The standardization a raykd model applies to its inputs (None when it has none)."""
    return (model.input_mean, model.input_std) if getattr(model, "standardize", False) else None


def _flattens_input(model: nn.Module) -> bool:
    from raykd.models import MLP

    return isinstance(model, MLP)


def make_shard_plan(layer_names: Sequence[str], plan: int | Sequence[Sequence[str]]) -> list[list[str]]:
    """Validate a plan (lists of layer names per stage) or cut the chain into `plan` even stages."""
    names = list(layer_names)
    if isinstance(plan, int):
        if not 1 <= plan <= len(names):
            raise ValueError(f"shard plan: {plan} stages for {len(names)} layers {names}; use 1..{len(names)}")
        base, extra = divmod(len(names), plan)
        stages, start = [], 0
        for i in range(plan):
            size = base + (1 if i < extra else 0)
            stages.append(names[start : start + size])
            start += size
        return stages
    stages = [list(s) for s in plan]
    if not stages or any(not s for s in stages):
        raise ValueError(f"shard plan has an empty stage: {stages}; every stage needs at least one layer")
    flat = [n for s in stages for n in s]
    unknown = [n for n in flat if n not in names]
    if unknown:
        raise ValueError(f"shard plan names unknown layers {unknown}; the model's layers are {names}")
    seen: dict[str, int] = {}
    for i, s in enumerate(stages):
        for n in s:
            if n in seen:
                raise ValueError(f"shard plan covers layer {n!r} twice (stages {seen[n]} and {i}); each layer belongs to one stage")
            seen[n] = i
    missing = [n for n in names if n not in seen]
    if missing:
        raise ValueError(f"shard plan does not cover layers {missing}; every layer of {names} must be in one stage")
    if flat != names:
        raise ValueError(f"shard plan must keep forward order {names}, got {stages}; stages are consecutive runs of layers")
    return stages


class StageModule(nn.Module):
    """The layers of one stage, run in order; records the outputs of `feature_layers`."""

    def __init__(
        self,
        layers: "OrderedDict[str, nn.Module]",
        flatten_input: bool = False,
        feature_layers: Iterable[str] = (),
        input_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.names = list(layers)
        self.layers = nn.ModuleList(layers.values())
        self.flatten_input = flatten_input
        self.feature_layers = [n for n in feature_layers if n in self.names]
        # The first stage of a model that standardizes its inputs does so before its first layer.
        self.standardize = input_stats is not None
        if input_stats is not None:
            self.register_buffer("input_mean", input_stats[0].detach().clone())
            self.register_buffer("input_std", input_stats[1].detach().clone())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.flatten_input:
            x = x.flatten(1)
        if self.standardize:
            x = (x - self.input_mean) / self.input_std
        feats = {}
        for name, layer in zip(self.names, self.layers):
            x = layer(x)
            if name in self.feature_layers:
                feats[name] = x
        return x, feats


def _stage_from_checkpoint(spec: dict[str, Any], weights: str, names: list[str], flatten_input: bool,
                           feature_layers: list[str]) -> StageModule:
    """Builds the architecture on the meta device and materialises only this stage's tensors."""
    from safetensors import safe_open

    from raykd.models import build_model

    with torch.device("meta"):
        model = build_model(spec)
    chain = pipeline_layers(model)
    layers = OrderedDict((n, chain[n]) for n in names)
    with safe_open(weights, framework="pt") as f:
        keys = set(f.keys())
        first = names[0] == next(iter(chain))
        stats = (f.get_tensor("input_mean"), f.get_tensor("input_std")) if first and "input_mean" in keys else None
        stage = StageModule(layers, flatten_input, feature_layers, stats).to_empty(device="cpu")
        if stats is not None:
            stage.input_mean.copy_(stats[0])
            stage.input_std.copy_(stats[1])
        for n, layer in layers.items():
            state = {k[len(n) + 1 :]: f.get_tensor(k) for k in keys if k.startswith(n + ".")}
            layer.load_state_dict(state)
    return freeze(stage)


class _StageWorker:
    """One pipeline stage inside a Ray actor, on its GPU when Ray gave it one."""

    def __init__(self, build: dict[str, Any], num_threads: int, device: str = "cpu") -> None:
        torch.set_num_threads(max(1, num_threads))
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("pipeline stage actor was given GPUs (stage_num_gpus > 0) but sees no CUDA device")
        self.device = torch.device(device)
        if "module" in build:
            self.stage = freeze(build["module"])
        else:
            self.stage = _stage_from_checkpoint(**build)
        self.stage.to(self.device)
        self.param_bytes = module_bytes(self.stage)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # Outputs go back to host memory: the object store carries them to the next stage's actor.
        with torch.inference_mode():
            out, feats = self.stage(x.to(self.device, non_blocking=True))
            return out.cpu(), {name: value.cpu() for name, value in feats.items()}

    def info(self) -> dict[str, Any]:
        return {"layers": self.stage.names, "param_bytes": self.param_bytes, "pid": os.getpid(), "device": str(self.device)}


def _offload(offload_param: str | dict[str, Any] | None, num_gpus: float) -> dict[str, Any] | None:
    """DeepSpeed's `offload_param` for ZeRO ranks: CPU memory by default on GPU ranks, none on CPU ranks."""
    if num_gpus <= 0:
        if offload_param not in (None, "none"):
            raise ValueError(
                f"Distributed offload_param={offload_param!r} moves parameters off the GPU, and these ranks are CPU ranks "
                "(stage_num_gpus: 0) whose partitions already live in memory: drop offload_param or give the ranks GPUs"
            )
        return None
    if offload_param in (None, "cpu"):
        return {"device": "cpu", "pin_memory": True}
    if offload_param == "none":
        return None
    device = offload_param.get("device") if isinstance(offload_param, dict) else None
    if device == "cpu" or (device == "nvme" and offload_param.get("nvme_path")):
        return dict(offload_param)
    raise ValueError(
        f"Distributed offload_param must be 'cpu', 'none' or {{'device': 'nvme', 'nvme_path': <dir>}}, got {offload_param!r}"
    )


@register("Distributed")
class DistributedTeacher(Teacher):
    """A teacher split across Ray actors (pipeline stages, tensor-parallel ranks) or GPUs
    (DeepSpeed TP / ZeRO-Inference).

    Pipeline params: `plan` (number of stages, or a list of layer-name lists covering every layer
    once, in order), `num_micro_batches`. Tensor and zero params: `tp_size` (ranks per replica,
    default 2; zero also runs on one). Zero's `offload_param`: "cpu" (the default on GPU ranks),
    "none", or DeepSpeed's dict (`{"device": "nvme", "nvme_path": ...}`); CPU ranks keep their
    partition in memory already, so offload is a GPU option and CPU ranks compute in fp32.
    `stage_num_cpus` / `stage_num_gpus` are the Ray resources of each stage or rank actor.
    Actors start on the first call (Ray must be initialised or initialisable) and stop with
    `shutdown()` or when the teacher is garbage collected.
    """

    kind = "Distributed"
    one_network = True

    def __init__(
        self,
        model: nn.Module | Teacher | None = None,
        plan: int | Sequence[Sequence[str]] = 2,
        backend: str = "pipeline",
        num_micro_batches: int = 4,
        stage_num_cpus: float = 0.25,
        stage_num_gpus: float = 0.0,
        layers: Iterable[str] = (),
        num_classes: int | None = None,
        spec: dict[str, Any] | None = None,
        weights: str | None = None,
        tp_size: int | None = None,
        dtype: str = "fp16",
        offload_param: str | dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"Distributed backend must be one of {BACKENDS}, got {backend!r}")
        if num_micro_batches < 1:
            raise ValueError(f"num_micro_batches must be >= 1, got {num_micro_batches}")
        if dtype not in DTYPES:
            raise ValueError(f"Distributed dtype must be one of {DTYPES}, got {dtype!r}")
        if (model is None) == (spec is None):
            raise ValueError("Distributed teacher takes either model= or spec= + weights= (a safetensors file)")
        self.backend = backend
        self.layers = list(layers)
        self.num_micro_batches = int(num_micro_batches)
        self.stage_num_cpus, self.stage_num_gpus = float(stage_num_cpus), float(stage_num_gpus)
        self.spec, self.weights = (dict(spec), str(weights)) if spec is not None else (None, None)
        if model is not None:
            model = base_model(model)
        else:
            if weights is None or not Path(weights).is_file():
                raise FileNotFoundError(f"Distributed teacher: spec= needs weights= an existing safetensors file, got {weights}")
            from raykd.models import build_model

            with torch.device("meta"):  # the architecture only: no weights in the driver
                model = build_model(self.spec)
        found = num_classes if num_classes is not None else getattr(model, "num_classes", None)
        if found is None:
            raise ValueError("Distributed teacher needs num_classes (the model does not declare it)")
        self.num_classes = int(found)
        self._model_bytes = module_bytes(model)
        self._actors: list[Any] = []
        self._engine: nn.Module | None = None
        self._group: TensorParallelGroup | None = None
        self.tp_size, self.dtype = tp_size, dtype
        self.rank_group = backend in ("tensor", "zero") or (backend == "deepspeed" and (tp_size or 1) > 1)
        self.offload = _offload(offload_param, self.stage_num_gpus) if backend == "zero" else None
        if self.rank_group:
            self._init_rank_group(model)
        elif backend == "pipeline":
            chain = pipeline_layers(model)
            self.plan = make_shard_plan(list(chain), plan)
            unknown = [n for n in self.layers if n not in chain]
            if unknown:
                raise ValueError(f"Distributed features {unknown} are not pipeline layers {list(chain)}")
            flat = _flattens_input(model)
            if self.spec is not None:
                self._builds = [
                    dict(spec=self.spec, weights=self.weights, names=names, flatten_input=flat and i == 0,
                         feature_layers=self.layers)
                    for i, names in enumerate(self.plan)
                ]
            else:
                self._builds = [
                    {"module": StageModule(OrderedDict((n, freeze(chain[n])) for n in names), flat and i == 0, self.layers,
                                           _input_stats(model) if i == 0 else None)}
                    for i, names in enumerate(self.plan)
                ]
        else:
            self.plan = []
            if self.spec is not None:
                from safetensors.torch import load_file

                model = model.to_empty(device="cpu")
                model.load_state_dict(load_file(self.weights))
            self._deepspeed_model = model  # wrapped lazily on first call (needs CUDA)

    def _init_rank_group(self, model: nn.Module) -> None:
        if self.layers:
            raise ValueError(
                f"Distributed backend={self.backend!r} returns logits only (features stay split across ranks); "
                "drop layers= or use backend='pipeline' for features"
            )
        self.tp_size = 2 if self.tp_size is None else int(self.tp_size)
        least = 1 if self.backend == "zero" else 2
        if self.tp_size < least:
            raise ValueError(f"Distributed backend={self.backend!r} needs tp_size >= {least} (ranks to split over), got {self.tp_size}")
        self.plan = []
        self.tp_plan = {} if self.backend == "zero" else tensor_parallel_plan(model, self.tp_size)
        if self.backend == "deepspeed":
            deepspeed_policy(model, self.tp_plan)  # refuses a split DeepSpeed cannot make, before any GPU is asked for
        self._tp_build = {"module": model} if self.spec is None else {"spec": self.spec, "weights": self.weights}

    @classmethod
    def from_config(
        cls,
        checkpoint: str,
        member: str | None = None,
        plan: int | Sequence[Sequence[str]] = 2,
        backend: str = "pipeline",
        num_micro_batches: int = 4,
        stage_num_cpus: float = 0.25,
        stage_num_gpus: float = 0.0,
        layers: Iterable[str] = (),
        tp_size: int | None = None,
        dtype: str = "fp16",
        offload_param: str | dict[str, Any] | None = None,
    ) -> "DistributedTeacher":
        """Reads the spec from a `save_members` manifest; each stage actor loads only its tensors."""
        import json

        from raykd.teachers.checkpoint import MANIFEST

        manifest = json.loads((Path(checkpoint) / MANIFEST).read_text())
        entries = manifest["members"]
        entry = entries[0] if member is None else next((e for e in entries if e["name"] == member), None)
        if entry is None or (member is None and len(entries) != 1):
            raise ValueError(f"checkpoint {checkpoint}: pick one member with member= out of {[e['name'] for e in entries]}")
        weights = str(Path(checkpoint) / f"{entry['name']}.safetensors")
        return cls(spec=entry["spec"], weights=weights, plan=plan, backend=backend, num_micro_batches=num_micro_batches,
                   stage_num_cpus=stage_num_cpus, stage_num_gpus=stage_num_gpus, layers=layers, tp_size=tp_size, dtype=dtype,
                   offload_param=offload_param)

    # ---- pipeline ------------------------------------------------------------------------------
    def _start(self) -> None:
        import ray

        if not ray.is_initialized():
            ray.init()
        remote = ray.remote(_StageWorker)
        threads = max(1, int(self.stage_num_cpus))
        device = "cuda" if self.stage_num_gpus > 0 else "cpu"
        self._actors = [
            remote.options(num_cpus=self.stage_num_cpus, num_gpus=self.stage_num_gpus).remote(build, threads, device)
            for build in self._builds
        ]

    def stage_info(self) -> list[dict[str, Any]]:
        """What each stage actor holds (layer names, parameter bytes, process id)."""
        import ray

        if not self._actors:
            self._start()
        return ray.get([a.info.remote() for a in self._actors])

    def _pipeline(self, x: torch.Tensor) -> ModelOutput:
        import ray

        if not self._actors:
            self._start()
        chunks = x.chunk(min(self.num_micro_batches, max(1, x.shape[0])))
        finals, feature_refs = [], []
        for chunk in chunks:
            ref = ray.put(chunk.contiguous())
            for actor in self._actors:
                ref, feats = actor.forward.options(num_returns=2).remote(ref)  # chained: no driver round trip
                feature_refs.append(feats)
            finals.append(ref)
        outs = ray.get(finals)
        out = ModelOutput(logits=torch.cat(outs))
        if self.layers:
            per_chunk = ray.get(feature_refs)
            k = len(self._actors)
            merged: dict[str, list[torch.Tensor]] = {}
            for c in range(len(chunks)):
                for stage_feats in per_chunk[c * k : (c + 1) * k]:
                    for name, value in stage_feats.items():
                        merged.setdefault(name, []).append(value)
            out.features = OrderedDict((n, torch.cat(merged[n])) for n in self.layers)
        return out

    def shutdown(self) -> None:
        import ray

        for a in self._actors:
            ray.kill(a)
        self._actors = []
        if self._group is not None:
            self._group.shutdown()
            self._group = None

    # ---- tensor parallel -----------------------------------------------------------------------
    def _rank_num_gpus(self) -> float:
        return max(self.stage_num_gpus, 1.0) if self.backend == "deepspeed" else self.stage_num_gpus

    def _tensor_parallel(self, x: torch.Tensor) -> ModelOutput:
        if self._group is None:
            gpus = self._rank_num_gpus()
            if gpus > 0:
                self._need_cuda()
            engine = "torch" if self.backend == "tensor" else self.backend
            dtype = self.dtype if gpus > 0 else "fp32"  # half precision saves GPU memory; CPU kernels want fp32
            self._group = TensorParallelGroup(self._tp_build, self.tp_plan, self.tp_size, self.stage_num_cpus, gpus, engine, dtype,
                                              self.offload)
        return ModelOutput(logits=self._group(x).to(x.device))

    def rank_info(self) -> list[dict[str, Any]]:
        """What each rank holds (rank, process id, parameter bytes, device)."""
        if self._group is None:
            raise RuntimeError("the rank group starts on the first batch; call the teacher first")
        return self._group.info()

    # ---- DeepSpeed -----------------------------------------------------------------------------
    def _need_cuda(self) -> None:
        if not torch.cuda.is_available():
            why = "DeepSpeed" if self.backend == "deepspeed" else f"stage_num_gpus={self.stage_num_gpus:g}"
            raise RuntimeError(
                f"Distributed backend={self.backend!r} runs on CUDA GPUs ({why}); this process sees none. "
                "Give the soft-target actors GPUs (soft_targets.num_gpus), or on CPU use backend='tensor' or 'zero' "
                "(stage_num_gpus: 0, gloo) or backend='pipeline'"
            )

    def _deepspeed(self) -> nn.Module:
        if self._engine is not None:
            return self._engine
        self._need_cuda()
        import deepspeed  # lazy: CPU users never pay for it

        for k, v in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29511")):
            os.environ.setdefault(k, v)
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[self.dtype]
        # One GPU (tp_size > 1 goes through the rank group instead): kernels and dtype, no split.
        self._engine = deepspeed.init_inference(self._deepspeed_model.eval(), dtype=dtype, replace_with_kernel_inject=False)
        self._ds_dtype = dtype
        return self._engine

    # ---- common --------------------------------------------------------------------------------
    def forward(self, inputs: Any) -> ModelOutput:
        x = to_tensor(inputs)
        if self.backend == "pipeline":
            return self._pipeline(x)
        if self.rank_group:
            return self._tensor_parallel(x)
        engine = self._deepspeed()
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        x = x.to(device)
        x = x.to(self._ds_dtype) if x.is_floating_point() else x
        out = engine(x)
        logits = out.logits if isinstance(out, ModelOutput) else out
        return ModelOutput(logits=logits.float())

    def requirements(self) -> Requirements:
        if self.backend == "pipeline":
            # The driver holds no weights; each stage actor reserves its own resources.
            return Requirements(num_cpus=0.25, num_gpus=0.0, memory_bytes=0, helpers=tuple(self.stage_requirements()))
        if self.rank_group:
            # Rank 0 is the pool's own actor; its peers must share its node. A ZeRO rank's 1/tp_size
            # lives in host memory when offloaded to CPU (the GPU holds the layers in flight); with
            # NVMe it is an upper bound (only the swap buffers stay in memory).
            rank = Requirements(self.stage_num_cpus, self._rank_num_gpus(), self._model_bytes // self.tp_size)
            return Requirements(rank.num_cpus, rank.num_gpus, rank.memory_bytes, helpers=(rank,) * (self.tp_size - 1), same_node=True)
        return Requirements(num_cpus=1.0, num_gpus=1.0, memory_bytes=self._model_bytes)

    def stage_requirements(self) -> list[Requirements]:
        per = self._model_bytes // max(1, len(self.plan))
        return [Requirements(self.stage_num_cpus, self.stage_num_gpus, per) for _ in self.plan]

    def describe(self) -> dict[str, Any]:
        if self.rank_group:
            offload = {"offload_param": self.offload} if self.backend == "zero" else {}
            return {**super().describe(), "backend": self.backend, "tp_size": self.tp_size, "tp_plan": self.tp_plan, **offload}
        return {**super().describe(), "backend": self.backend, "plan": self.plan, "num_micro_batches": self.num_micro_batches}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_actors"] = []  # a copy starts its own stage actors
        state["_engine"] = None
        state["_group"] = None
        return state
