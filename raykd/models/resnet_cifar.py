"""CIFAR ResNets, the CRD benchmark's teachers and students (resnet8 ... resnet110, resnet8x4, resnet32x4).

Follows the definitions in HobbitLong/RepDistiller `models/resnet.py` (He et al. 2016's CIFAR
variant: a 3×3 stem, three stages of basic blocks, depth = 6n + 2); the pooling is adaptive so
the same network runs on 16×16 test images and 32×32 CIFAR-sized ones.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from raykd.models.standardize import register_input_stats, standardized

__all__ = ["CIFAR_RESNETS", "ResNetCIFAR"]

# name -> (depth, widths of the stem and the three stages); "x4" quadruples the widths.
CIFAR_RESNETS: dict[str, tuple[int, tuple[int, int, int, int]]] = {
    **{f"resnet{d}": (d, (16, 16, 32, 64)) for d in (8, 14, 20, 32, 44, 56, 110)},
    "resnet8x4": (8, (32, 64, 128, 256)),
    "resnet32x4": (32, (32, 64, 128, 256)),
}


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.downsample = (
            nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            if stride != 1 or inplanes != planes
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.downsample(x))


class ResNetCIFAR(nn.Module):
    """A CIFAR ResNet by `name` on flat (B, channels·H·W) inputs of a square image.

    `feature_layers` are `layer1..3` (B, C, H, W) maps and `pool`, the pooled embedding before
    `fc`, as the feature strategies' papers take them. With `standardize`, inputs are first
    standardized by the `input_mean`/`input_std` buffers (see `raykd.models.standardize`).
    """

    __constants__ = ["standardize"]

    def __init__(self, in_features: int, num_classes: int, name: str = "resnet8", channels: int = 3, standardize: bool = False) -> None:
        super().__init__()
        if (why := self.check_spec({"name": name})) is not None:
            raise ValueError(f"name {name!r} {why}")
        side = math.isqrt(in_features // channels) if in_features % channels == 0 else 0
        if side * side * channels != in_features:
            raise ValueError(f"{name} needs a square image of {channels} channels: in_features={in_features} is not {channels}·side²")
        depth, (stem, *widths) = CIFAR_RESNETS[name]
        blocks = (depth - 2) // 6
        self.conv1 = nn.Sequential(nn.Conv2d(channels, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem), nn.ReLU())
        width = stem
        for i, (planes, stride) in enumerate(zip(widths, (1, 2, 2)), start=1):
            stage = [BasicBlock(width if b == 0 else planes, planes, stride if b == 0 else 1) for b in range(blocks)]
            setattr(self, f"layer{i}", nn.Sequential(*stage))
            width = planes
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(width, num_classes)
        self.name, self.channels, self.side = name, channels, side
        self.in_features, self.num_classes = in_features, num_classes
        self.feature_layers = ["layer1", "layer2", "layer3", "pool"]
        self.standardize = standardize
        if standardize:
            register_input_stats(self, in_features)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def check_spec(spec: dict) -> str | None:
        """Why a spec's name cannot build (unknown: the known ones listed), else None."""
        if spec.get("name", "resnet8") not in CIFAR_RESNETS:
            return f"is not a CIFAR ResNet; choose one of {list(CIFAR_RESNETS)}"
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = standardized(self, x)
        x = self.conv1(x.reshape(-1, self.channels, self.side, self.side))
        return self.fc(self.pool(self.layer3(self.layer2(self.layer1(x)))))
