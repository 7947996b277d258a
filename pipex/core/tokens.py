"""Deterministic tokens of a call's arguments: the default ``base`` of a target.

A token must be the same in every process and every run of the same script, or the cache
never hits. ``dask.tokenize`` is used on a stable form of the arguments: sets are sorted,
enum members, dataclasses and classes are named rather than pickled (classes defined in a
script's ``__main__`` pickle differently on every run).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any

from dask.base import tokenize

_PLAIN = (str, int, float, bool, bytes, complex, type(None))


class NotDeterministicError(TypeError):
    """An argument has no token that is the same in every run."""


def token(*values: Any) -> str:
    """A hex token of ``values`` that is stable across processes and runs."""
    return tokenize(*(stable(v) for v in values), ensure_deterministic=True)


#: How deep :func:`stable` recurses before a loop takes over, and how deep a form that loop
#: builds may nest before it is replaced by its token (dask tokenizes nested values
#: recursively). Values shallower than this keep the tokens they always had.
DEPTH = 16


def stable(value: Any, depth: int = 0) -> Any:
    """``value`` in a form whose dask token does not depend on the process or run."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if hasattr(value, "__dask_tokenize__") and not isinstance(value, type):
        return value
    if depth >= DEPTH:
        return _deep(value)
    depth += 1
    if kind in (list, tuple):
        return (kind.__name__, [stable(v, depth) for v in value])
    if kind is dict:
        pairs = ((repr(k), stable(v, depth)) for k, v in value.items())
        return ("dict", sorted(pairs, key=_first))
    if isinstance(value, (set, frozenset)):
        return (
            "set",
            sorted(tokenize(stable(v, depth), ensure_deterministic=True) for v in value),
        )
    if isinstance(value, enum.Enum):
        return ("enum", _name(kind), value.name)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [
            (f.name, stable(getattr(value, f.name), depth)) for f in dataclasses.fields(value)
        ]
        return ("dataclass", _name(kind), fields)
    return _parts(value)[1]


def _deep(value: Any) -> Any:
    """:func:`stable` of a deeply nested value, in a loop, inputs first; parts of the form
    nested :data:`DEPTH` deep are replaced by their tokens."""
    parts = _parts(value)
    if parts[0] is None:
        return parts[1]
    path = {id(value): None}  # the containers being walked, innermost last
    stack: list[tuple[list[Any], Callable[[list[Any]], Any], list[Any], list[int]]]
    stack = [(parts[0], parts[1], [], [0])]
    while True:
        items, build, forms, height = stack[-1]
        while len(forms) < len(items):
            child = items[len(forms)]
            children, built = _parts(child)
            if children is None:
                forms.append(built)
                continue
            if id(child) in path:
                raise NotDeterministicError(
                    f"an argument holds a {type(child).__name__} that contains itself"
                )
            path[id(child)] = None
            stack.append((children, built, [], [0]))
            break
        else:
            stack.pop()
            path.popitem()
            form = build(forms)
            depth = 1 if build is _set_form else height[0] + 1  # a set's items are tokens
            if depth >= DEPTH:
                form, depth = ("pipex.deep", tokenize(form, ensure_deterministic=True)), 0
            if not stack:
                return form
            outer = stack[-1][3]
            outer[0] = max(outer[0], depth)
            stack[-1][2].append(form)


def _parts(value: Any) -> tuple[list[Any], Callable[[list[Any]], Any]] | tuple[None, Any]:
    """A container's items and how its stable form is built from theirs; or ``None`` and
    the stable form of a value that is not looked inside."""
    kind = type(value)
    if kind in _PLAIN:
        return None, value
    if hasattr(value, "__dask_tokenize__") and not isinstance(value, type):
        return None, value
    if kind in (list, tuple):
        name = kind.__name__
        return list(value), lambda forms: (name, forms)
    if kind is dict:
        keys = [repr(k) for k in value]
        return list(value.values()), lambda forms: (
            "dict",
            sorted(zip(keys, forms, strict=True), key=_first),
        )
    if isinstance(value, (set, frozenset)):
        return list(value), _set_form
    if isinstance(value, enum.Enum):
        return None, ("enum", _name(kind), value.name)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = [f.name for f in dataclasses.fields(value)]
        items = [getattr(value, n) for n in names]
        return items, lambda forms: (
            "dataclass",
            _name(kind),
            list(zip(names, forms, strict=True)),
        )
    if isinstance(value, type):
        return None, ("type", _name(value))
    if kind.__module__ == "__main__":
        raise NotDeterministicError(
            f"{kind.__qualname__} is defined in the script being run, so its instances "
            "have no token that is the same on every run (give it a __dask_tokenize__ "
            "method)"
        )
    return None, value


def _set_form(forms: list[Any]) -> tuple[str, list[str]]:
    return ("set", sorted(tokenize(f, ensure_deterministic=True) for f in forms))


def _name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]
