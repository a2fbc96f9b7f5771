"""Distillation strategies (`DistillationStrategyType`), each a small `nn.Module` loss.

Call: `loss = strategy(student: ModelOutput, teacher: ModelOutput, labels=None)`.
Registration happens through the explicit imports below.
"""

from raykd.strategies.registry import available, build, register
from raykd.strategies.response import ResponseBased

__all__ = ["available", "build", "register", "ResponseBased"]
