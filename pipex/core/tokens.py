"""Deterministic tokens of a call's arguments: the default ``base`` of a target.

A token must be the same in every process and every run of the same script, or the cache
never hits. ``dask.tokenize`` is used on a stable form of the arguments: sets are sorted,
enum members, dataclasses and classes are named rather than pickled (classes defined in a
script's ``__main__`` pickle differently on every run).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from dask.base import tokenize

_PLAIN = (str, int, float, bool, bytes, complex, type(None))


class NotDeterministicError(TypeError):
    """An argument has no token that is the same in every run."""


def token(*values: Any) -> str:
    """A hex token of ``values`` that is stable across processes and runs."""
    return tokenize(*(stable(v) for v in values), ensure_deterministic=True)


def stable(value: Any) -> Any:
    """``value`` in a form whose dask token does not depend on the process or run."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if hasattr(value, "__dask_tokenize__") and not isinstance(value, type):
        return value
    if kind in (list, tuple):
        return (kind.__name__, [stable(v) for v in value])
    if kind is dict:
        return ("dict", sorted(((repr(k), stable(v)) for k, v in value.items()), key=_first))
    if isinstance(value, (set, frozenset)):
        return ("set", sorted(tokenize(stable(v), ensure_deterministic=True) for v in value))
    if isinstance(value, enum.Enum):
        return ("enum", _name(kind), value.name)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [(f.name, stable(getattr(value, f.name))) for f in dataclasses.fields(value)]
        return ("dataclass", _name(kind), fields)
    if isinstance(value, type):
        return ("type", _name(value))
    if kind.__module__ == "__main__":
        raise NotDeterministicError(
            f"{kind.__qualname__} is defined in the script being run, so its instances "
            "have no token that is the same on every run (give it a __dask_tokenize__ "
            "method)"
        )
    return value


def _name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]
