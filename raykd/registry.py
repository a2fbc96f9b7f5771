"""A registry by name: a duplicate name is an error, an unknown name lists what exists."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise ValueError(f"unknown {self.what} {name!r}; available: {self.available()}")
        return self._entries[name]

    def build(self, name: str, **params: object) -> object:
        return self.get(name)(**params)  # type: ignore[operator]

    def available(self) -> list[str]:
        return sorted(self._entries)
