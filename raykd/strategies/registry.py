"""Strategies by name, so configs, the CLI and Ray Tune search spaces all say "RelationBased"."""

from __future__ import annotations

from torch import nn

from raykd.registry import Registry

__all__ = ["STRATEGIES", "register", "build", "available"]

STRATEGIES: Registry[type[nn.Module]] = Registry("strategy")
register = STRATEGIES.register


def build(name: str, **params: object) -> nn.Module:
    """Instantiate a strategy by its registered name with its constructor's parameters."""
    return STRATEGIES.build(name, **params)  # type: ignore[return-value]


def available() -> list[str]:
    return STRATEGIES.available()
