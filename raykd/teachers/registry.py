"""Teachers by `TeacherModelType` name."""

from __future__ import annotations

from raykd.registry import Registry

__all__ = ["TEACHERS", "register", "build", "available", "build_from_config", "config_params"]

TEACHERS: Registry[type] = Registry("teacher kind")
register = TEACHERS.register


def build(kind: str, **params: object):
    """Instantiate a teacher by its `TeacherModelType` name."""
    return TEACHERS.build(kind, **params)


def available() -> list[str]:
    return TEACHERS.available()


def build_from_config(config: "dict[str, object]"):
    """`{"kind": "Ensemble", "checkpoint": "runs/teachers", "combine": "vote"}` → a teacher.

    Calls the kind's `from_config(**params)`, which takes only plain, picklable values, so a Ray
    actor can receive the dict and build its own replica. Unknown params raise naming the kind and
    what it accepts.
    """
    params = dict(config)
    kind = params.pop("kind", None)
    if kind is None:
        raise ValueError(f"teacher config needs 'kind' (one of {available()}), got keys {sorted(params)}")
    accepted = config_params(str(kind))
    if accepted is not None:
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ValueError(f"teacher.kind {kind!r}: unknown params {unknown}; accepted: {accepted}")
    return TEACHERS.get(str(kind)).from_config(**params)


def config_params(kind: str) -> list[str] | None:
    """The parameter names `build_from_config` accepts for `kind` (None: any)."""
    import inspect

    cls = TEACHERS.get(kind)
    sig = inspect.signature(cls.from_config)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        sig = inspect.signature(cls.__init__)  # the default from_config passes params to __init__
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return [n for n in sig.parameters if n not in ("self", "cls")]
