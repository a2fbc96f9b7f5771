"""Small reference MLPs for tabular and flattened-image inputs (teachers and students)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from raykd.models.standardize import register_input_stats

__all__ = ["MLP"]


class MLP(nn.Module):
    """`in_features → hidden... → num_classes`; hidden blocks are named `layer1`, `layer2`, ...

    The names are the public feature names that `FeatureExtractor` and strategy `pairs` use;
    `feature_layers` lists them so a caller can size adapters without a dummy forward.
    With `standardize`, `forward` first applies `(x - input_mean) / input_std` from buffers that
    `set_input_stats` fills, so the statistics are saved with the weights.
    """

    # A constant to TorchScript, which then drops the standardize branch of a model without its buffers.
    __constants__ = ["standardize"]

    def __init__(
        self, in_features: int, hidden: Sequence[int], num_classes: int, dropout: float = 0.0, standardize: bool = False
    ) -> None:
        super().__init__()
        if in_features < 1 or num_classes < 2 or any(h < 1 for h in hidden):
            raise ValueError(
                f"MLP needs in_features >= 1, num_classes >= 2 and positive widths; "
                f"got in_features={in_features}, hidden={list(hidden)}, num_classes={num_classes}"
            )
        blocks: "OrderedDict[str, nn.Module]" = OrderedDict()
        width = in_features
        for i, h in enumerate(hidden, start=1):
            block = [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                block.append(nn.Dropout(dropout))
            blocks[f"layer{i}"] = nn.Sequential(*block)
            width = h
        self.body = nn.Sequential(blocks)
        self.head = nn.Linear(width, num_classes)
        self.in_features = in_features
        self.num_classes = num_classes
        self.feature_layers = [f"body.layer{i}" for i in range(1, len(hidden) + 1)]
        self.feature_widths = list(hidden)
        self.standardize = standardize
        if standardize:
            register_input_stats(self, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if self.standardize:
            x = (x - self.input_mean) / self.input_std
        return self.head(self.body(x))
