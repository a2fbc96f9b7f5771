"""Package exports imported on first use, so a Ray task that runs one light function pays for no more."""

from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, modules: dict[str, list[str]]) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """`__all__`, `__getattr__` and `__dir__` for a package whose names live in its submodules.

    Every Ray Data or Ray task worker that unpickles a function of `raykd.x.y` imports the package
    `raykd.x` first: eager re-exports made each such worker import torch and scikit-learn (~3 CPU-s
    on two cores, a dozen workers per run) for functions that need only numpy and pyarrow.
    `modules` maps a submodule (relative to `package`) to the names it exports."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return sorted(where), __getattr__, __dir__
