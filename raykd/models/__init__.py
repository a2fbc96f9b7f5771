"""Reference architectures, built from a plain JSON-able spec so checkpoints stay weights-only."""

from __future__ import annotations

from typing import Any

from torch import nn

from raykd.models.cnn import SmallCNN
from raykd.models.defaults import default_student, default_teacher_members
from raykd.models.huggingface import HuggingFaceModel
from raykd.models.mlp import MLP
from raykd.models.mobilenet_cifar import MobileNetV2CIFAR
from raykd.models.resnet_cifar import CIFAR_RESNETS, ResNetCIFAR
from raykd.models.standardize import feature_stats, set_input_stats
from raykd.models.torchvision_model import TorchvisionModel
from raykd.models.transformer import CopyTransformer

__all__ = [
    "ARCHITECTURES",
    "CIFAR_RESNETS",
    "CopyTransformer",
    "HuggingFaceModel",
    "MLP",
    "MobileNetV2CIFAR",
    "ResNetCIFAR",
    "SmallCNN",
    "TorchvisionModel",
    "build_model",
    "count_parameters",
    "default_student",
    "default_teacher_members",
    "feature_stats",
    "set_input_stats",
]


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "cnn": SmallCNN,
    "resnet_cifar": ResNetCIFAR,
    "mobilenetv2_cifar": MobileNetV2CIFAR,
    "torchvision": TorchvisionModel,
    "copy_transformer": CopyTransformer,
    "huggingface": HuggingFaceModel,
}


def build_model(spec: dict[str, Any]) -> nn.Module:
    """`{"type": "mlp", "in_features": 64, "hidden": [256], "num_classes": 10}` or
    `{"type": "cnn", "in_features": 64, "channels": [16, 32], "num_classes": 10}` or
    `{"type": "resnet_cifar", "name": "resnet8x4", "in_features": 3072, "num_classes": 10}`; add
    `"standardize": true` to store input statistics in the model (see `set_input_stats`)."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in ARCHITECTURES:
        raise ValueError(f"model spec type must be one of {sorted(ARCHITECTURES)}, got {kind!r}")
    return ARCHITECTURES[kind](**spec)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
