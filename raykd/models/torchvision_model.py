"""Any torchvision architecture by name, built without weights (`{"type": "torchvision", "name": "resnet18"}`).

torchvision is optional (`pip install 'raykd[vision]'`, with a torch build that torchvision
matches): raykd's own CIFAR ResNets need nothing beyond torch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from raykd.models.standardize import register_input_stats, standardized

__all__ = ["TorchvisionModel"]

_INSTALL = "install it with pip install 'raykd[vision]' (a torchvision that matches the installed torch), or use type resnet_cifar"


def _models() -> Any:
    try:
        import torchvision.models
    except Exception as err:  # a torchvision built for another torch fails at import with varied errors
        raise ImportError(f"needs torchvision, which does not import here ({type(err).__name__}: {err}); {_INSTALL}") from None
    return torchvision.models


class TorchvisionModel(nn.Module):
    """`torchvision.models.get_model(name, weights=None, num_classes=...)` on flat (B, 3·H·W) inputs.

    `feature_layers` are the network's top-level children before its head (for a ResNet:
    `net.layer1` ... `net.avgpool`); `kwargs` go to the torchvision constructor.
    """

    __constants__ = ["standardize"]

    def __init__(self, in_features: int, num_classes: int, name: str, channels: int = 3, standardize: bool = False, kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        if (why := self.check_spec({"name": name})) is not None:
            raise ValueError(f"name {name!r} {why}")
        side = math.isqrt(in_features // channels)
        if side * side * channels != in_features:
            raise ValueError(f"{name} needs a square image of {channels} channels: in_features={in_features} is not {channels}·side²")
        self.net = _models().get_model(name, weights=None, num_classes=num_classes, **(kwargs or {}))
        self.channels, self.side, self.in_features, self.num_classes = channels, side, in_features, num_classes
        self.feature_layers = [f"net.{n}" for n, _ in list(self.net.named_children())[:-1]]
        self.standardize = standardize
        if standardize:
            register_input_stats(self, in_features)

    @staticmethod
    def check_spec(spec: dict) -> str | None:
        """Why a spec's name cannot build (torchvision missing; unknown: the known ones listed), else None."""
        try:
            models = _models()
        except ImportError as err:
            return str(err)
        names = models.list_models()
        if spec.get("name") not in names:
            return f"is not a torchvision architecture; choose one of {names}"
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = standardized(self, x)
        return self.net(x.reshape(-1, self.channels, self.side, self.side))
