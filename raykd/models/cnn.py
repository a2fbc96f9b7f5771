"""A small CNN for square single-channel images given as flat vectors (e.g. 8×8 digits)."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from raykd.models.standardize import register_input_stats

__all__ = ["SmallCNN"]


class SmallCNN(nn.Module):
    """conv blocks (3×3, ReLU, the last one max-pooled) → linear head.

    Blocks are named `conv1`, `conv2`, ... so their (B, C, H, W) maps are features for the
    attention, flow and neuron-selectivity strategies; `fc` is the embedding before the head.
    With `standardize`, each pixel is first standardized with the `input_mean`/`input_std`
    buffers (filled by `set_input_stats`, saved with the weights).
    """

    # A constant to TorchScript, which then drops the standardize branch of a model without its buffers.
    __constants__ = ["standardize"]

    def __init__(
        self,
        in_features: int,
        channels: Sequence[int],
        num_classes: int,
        embed: int = 128,
        dropout: float = 0.0,
        standardize: bool = False,
    ) -> None:
        super().__init__()
        side = math.isqrt(in_features)
        if side * side != in_features:
            raise ValueError(f"SmallCNN needs a square image: in_features={in_features} is not a perfect square")
        if not channels or min(channels) < 1:
            raise ValueError(f"SmallCNN needs positive channel counts, got {list(channels)}")
        blocks: "OrderedDict[str, nn.Module]" = OrderedDict()
        width = 1
        for i, c in enumerate(channels, start=1):
            layers: list[nn.Module] = [nn.Conv2d(width, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
            if i == len(channels):
                layers.append(nn.MaxPool2d(2))
            blocks[f"conv{i}"] = nn.Sequential(*layers)
            width = c
        self.side = side
        self.body = nn.Sequential(blocks)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(width * (side // 2) ** 2, embed), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(embed, num_classes)
        self.in_features = in_features
        self.num_classes = num_classes
        self.feature_layers = [f"body.conv{i}" for i in range(1, len(channels) + 1)] + ["fc"]
        self.standardize = standardize
        if standardize:
            register_input_stats(self, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.standardize:
            x = (x.reshape(-1, self.in_features) - self.input_mean) / self.input_std
        x = x.reshape(-1, 1, self.side, self.side)  # (B, 1, H, W)
        return self.head(self.fc(self.body(x)))
