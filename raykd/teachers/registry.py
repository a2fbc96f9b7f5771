"""Teachers by `TeacherModelType` name."""

from __future__ import annotations

from raykd.registry import Registry

__all__ = ["TEACHERS", "register", "build", "available"]

TEACHERS: Registry[type] = Registry("teacher kind")
register = TEACHERS.register


def build(kind: str, **params: object):
    """Instantiate a teacher by its `TeacherModelType` name."""
    return TEACHERS.build(kind, **params)


def available() -> list[str]:
    return TEACHERS.available()
