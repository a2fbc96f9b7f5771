"""What a model hands to a distillation strategy: logits plus named intermediate features."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import torch
from torch import nn

__all__ = ["ModelOutput", "FeatureExtractor", "as_model_output"]


@dataclass
class ModelOutput:
    """Logits and named features of one forward pass.

    `features` keeps the order in which layers ran, so strategies that pair layers "in order" and
    those that use "the last feature" (the embedding) agree on what that means.
    """

    logits: torch.Tensor
    features: "OrderedDict[str, torch.Tensor]" = field(default_factory=OrderedDict)
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None

    def feature(self, name: str) -> torch.Tensor:
        """The feature called `name`; the error lists what exists so a typo is easy to fix."""
        if name not in self.features:
            raise KeyError(
                f"no feature named {name!r}; this output has {list(self.features)}. "
                "Name a layer that the FeatureExtractor hooks (layers=[...])."
            )
        return self.features[name]

    def last_feature(self) -> torch.Tensor:
        if not self.features:
            raise ValueError(
                "this strategy needs features but the output has none; wrap the model in "
                "raykd.FeatureExtractor(model, layers=[...])"
            )
        return next(reversed(self.features.values()))

    def detach(self) -> "ModelOutput":
        """A copy cut from the autograd graph: teacher tensors never receive gradients."""
        return ModelOutput(
            logits=self.logits.detach(),
            features=OrderedDict((k, v.detach()) for k, v in self.features.items()),
            hidden_states=None if self.hidden_states is None else tuple(h.detach() for h in self.hidden_states),
            attentions=None if self.attentions is None else tuple(a.detach() for a in self.attentions),
        )


def as_model_output(result: object) -> ModelOutput:
    """Accepts what common models return: a tensor, a ModelOutput, or a Hugging Face output."""
    if isinstance(result, ModelOutput):
        return result
    if isinstance(result, torch.Tensor):
        return ModelOutput(logits=result)
    logits = getattr(result, "logits", None)
    if logits is None:
        logits = getattr(result, "last_hidden_state", None)
    if logits is None:
        raise TypeError(f"cannot read logits from a {type(result).__name__}; return a tensor or a ModelOutput")
    return ModelOutput(
        logits=logits,
        hidden_states=getattr(result, "hidden_states", None),
        attentions=getattr(result, "attentions", None),
    )


class FeatureExtractor(nn.Module):
    """Wraps any `nn.Module` and records the outputs of named sub-modules with forward hooks.

    Works on third-party models (Hugging Face included) where no `forward_intermediates` exists.
    Features come back in the order the layers ran.
    """

    def __init__(self, model: nn.Module, layers: Iterable[str] = ()) -> None:
        super().__init__()
        self.model = model
        self.layers = list(layers)
        modules = dict(model.named_modules())
        missing = [name for name in self.layers if name not in modules]
        if missing:
            known = [n for n in modules if n]
            raise KeyError(f"layers {missing} not found in {type(model).__name__}; known layers: {known}")
        self._captured: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        self._handles = [modules[name].register_forward_hook(self._hook(name)) for name in self.layers]

    def _hook(self, name: str):
        def record(_module: nn.Module, _inputs: tuple, output: object) -> None:
            if isinstance(output, tuple):  # e.g. Hugging Face layers return (hidden, attn, ...)
                output = output[0]
            self._captured[name] = output

        return record

    def forward(self, *args: object, **kwargs: object) -> ModelOutput:
        self._captured = OrderedDict()
        out = as_model_output(self.model(*args, **kwargs))
        features: Mapping[str, torch.Tensor] = self._captured
        self._captured = OrderedDict()
        out.features = OrderedDict(features)
        return out
