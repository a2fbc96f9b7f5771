"""The CIFAR MobileNetV2 of the CRD benchmark (`mobile_half`: width ×0.5, expansion 6).

Follows HobbitLong/RepDistiller `models/mobilenetv2.py` (Sandler et al. 2018's inverted residuals,
with a stride-2 stem and the second stage at stride 1 for 32×32 inputs); the pooling is adaptive
so 16×16 test images run too.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from raykd.models.standardize import register_input_stats, standardized

__all__ = ["MobileNetV2CIFAR"]

# (channels, blocks, stride) per stage; the first stage never expands (RepDistiller's t=1).
STAGES = ((16, 1, 1), (24, 2, 1), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1))


def _conv_bn(inp: int, oup: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(inp, oup, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(oup)]
    return layers + [nn.ReLU()] if relu else layers


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.residual = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            *_conv_bn(inp, hidden, 1), *_conv_bn(hidden, hidden, 3, stride, groups=hidden), *_conv_bn(hidden, oup, 1, relu=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2CIFAR(nn.Module):
    """MobileNetV2 on flat (B, channels·H·W) inputs of a square image.

    `feature_layers` are the ends of stages 2, 3, 5 and 7 (the maps RepDistiller's feature
    strategies take) and `pool`, the embedding before `fc`.
    """

    __constants__ = ["standardize"]

    def __init__(self, in_features: int, num_classes: int, width: float = 0.5, expand: int = 6, channels: int = 3, standardize: bool = False) -> None:
        super().__init__()
        side = math.isqrt(in_features // channels) if in_features % channels == 0 else 0
        if side * side * channels != in_features:
            raise ValueError(f"MobileNetV2 needs a square image of {channels} channels: in_features={in_features} is not {channels}·side²")
        if width <= 0 or expand < 1:
            raise ValueError(f"MobileNetV2 needs width > 0 and expand >= 1, got width={width}, expand={expand}")
        width_in = int(32 * width)
        self.conv1 = nn.Sequential(*_conv_bn(channels, width_in, 3, stride=2))
        for i, (c, n, s) in enumerate(STAGES, start=1):
            out = int(c * width)
            blocks = [InvertedResidual(width_in if b == 0 else out, out, s if b == 0 else 1, 1 if i == 1 else expand) for b in range(n)]
            setattr(self, f"stage{i}", nn.Sequential(*blocks))
            width_in = out
        last = 1280  # RepDistiller keeps 1280 for width <= 1
        self.conv2 = nn.Sequential(*_conv_bn(width_in, last, 1))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(last, num_classes)
        self.channels, self.side, self.in_features, self.num_classes = channels, side, in_features, num_classes
        self.feature_layers = ["stage2", "stage3", "stage5", "stage7", "pool"]
        self.standardize = standardize
        if standardize:
            register_input_stats(self, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = standardized(self, x)
        x = self.conv1(x.reshape(-1, self.channels, self.side, self.side))
        for i in range(1, len(STAGES) + 1):
            x = getattr(self, f"stage{i}")(x)
        return self.fc(self.pool(self.conv2(x)))
