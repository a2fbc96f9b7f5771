"""Helpers shared by the teacher kinds: tensors from batches, unwrapping, checkpoints by kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from raykd.teachers.base import Teacher

__all__ = ["to_tensor", "as_teacher", "base_model", "teacher_from_checkpoint", "module_bytes"]


def to_tensor(x: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A tensor from what a Ray Data batch column holds (NumPy array, list, tensor)."""
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, np.ndarray):
        # zero_copy_batch hands read-only views; torch warns on those, so copy them.
        t = torch.from_numpy(x if x.flags.writeable else x.copy())
    else:
        t = torch.as_tensor(np.asarray(x))
    if dtype is not None:
        t = t.to(dtype)
    elif t.is_floating_point() and t.dtype == torch.float64:
        t = t.float()
    return t


def as_teacher(obj: Teacher | nn.Module, num_classes: int | None = None, layers: Iterable[str] = ()) -> Teacher:
    """A Teacher as is; a plain `nn.Module` wrapped as a frozen NeuralNetwork teacher."""
    if isinstance(obj, Teacher):
        return obj
    if isinstance(obj, nn.Module):
        from raykd.teachers.neural_network import NeuralNetworkTeacher

        return NeuralNetworkTeacher(obj, num_classes=num_classes, layers=layers)
    raise TypeError(f"expected a Teacher or an nn.Module, got {type(obj).__name__}")


def base_model(obj: Teacher | nn.Module) -> nn.Module:
    """The plain network inside a single-network teacher (NeuralNetwork, Self, an eager
    Pretrained), or the module itself."""
    from raykd.outputs import FeatureExtractor

    net = getattr(obj, "net", None)
    if isinstance(obj, Teacher) and isinstance(net, FeatureExtractor):
        return net.model
    if isinstance(obj, Teacher):
        raise TypeError(
            f"this needs a single network, got a {obj.kind} teacher; pass the nn.Module or a NeuralNetwork teacher"
        )
    return obj


def teacher_from_checkpoint(
    checkpoint: str | Path,
    layers: Iterable[str] = (),
    member: str | None = None,
    combine: str = "mean_logits",
) -> Teacher:
    """One member → a NeuralNetwork teacher; several → an Ensemble (or pick one with `member=`)."""
    from raykd.teachers.checkpoint import load_members
    from raykd.teachers.ensemble import EnsembleTeacher
    from raykd.teachers.neural_network import NeuralNetworkTeacher

    members, _extra = load_members(checkpoint)
    if member is not None:
        names = [m.name for m in members]
        if member not in names:
            raise ValueError(f"checkpoint {checkpoint} has no member {member!r}; members: {names}")
        members = [m for m in members if m.name == member]
    layers = list(layers)
    teachers = [NeuralNetworkTeacher(m.model, layers=layers, name=m.name) for m in members]
    if len(teachers) == 1:
        return teachers[0]
    return EnsembleTeacher(teachers, combine=combine)


def module_bytes(module: nn.Module) -> int:
    """Bytes held by parameters and buffers (what a replica keeps in memory)."""
    total = sum(p.numel() * p.element_size() for p in module.parameters())
    total += sum(b.numel() * b.element_size() for b in module.buffers())
    return int(total)


def check_keys(params: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"{what}: unknown params {unknown}; accepted: {sorted(allowed)}")
