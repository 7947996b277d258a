"""The one walker over a call's arguments: which containers pipex looks inside.

Upstream nodes, input placeholders and targets can sit anywhere inside the arguments of a
call: in lists, tuples (named ones too), sets, dicts and other mappings, and dataclass
instances. Every place that looks for them or swaps them walks the arguments with
:func:`visit` or :func:`replace`, so the containers searched are defined once, here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

#: Containers searched item by item, rebuilt with ``type(value)(items)``.
SEQUENCES = (list, tuple, set, frozenset)
#: Leaves that need no look inside (the common case, checked first).
ATOMS = frozenset({str, int, float, bool, bytes, complex, type(None)})


def visit(value: Any, fn: Callable[[Any], object]) -> None:
    """Call ``fn`` on every value inside ``value`` that is not a container."""
    kind = type(value)
    if kind in ATOMS or (kind not in SEQUENCES and _shape(kind) is _LEAF):
        fn(value)
        return
    for child in _children(value, kind):  # type: ignore[union-attr]
        visit(child, fn)


def replace(value: Any, fn: Callable[[Any], Any]) -> Any:
    """``value`` with every non-container ``x`` inside it replaced by ``fn(x)``.

    Containers are rebuilt only where something inside them changed, so ``replace(v, f) is
    v`` tells that ``f`` changed nothing. A plain function, not a closure: a recursive closure
    is a reference cycle that would keep every value it produced alive until the garbage
    collector runs.
    """
    kind = type(value)
    if kind in ATOMS:
        return fn(value)
    if kind in SEQUENCES:
        items = [replace(item, fn) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return kind(items)
    if kind is dict:
        changed = {k: replace(v, fn) for k, v in value.items()}
        if all(changed[k] is v for k, v in value.items()):
            return value
        return changed
    if _shape(kind) is _LEAF:  # a node, a target, any other object
        return fn(value)
    return _replace_other(value, kind, fn)


def copy(value: Any) -> Any:
    """``value`` with every container rebuilt (its leaves shared): a snapshot of its structure."""
    kind = type(value)
    if kind in ATOMS:
        return value
    if kind in SEQUENCES:
        return kind([copy(item) for item in value])
    if kind is dict:
        return {k: copy(v) for k, v in value.items()}
    children = _children(value, kind)
    if children is None:
        return value
    return _rebuild(value, kind, [copy(child) for child in children])


def _children(value: Any, kind: type) -> Iterator[Any] | list[Any] | None:
    """The items of a container (dict-like: its values), or ``None`` for a leaf."""
    shape = _shape(kind)
    if shape is _LEAF:
        return None
    if shape is _SEQUENCE:
        return value  # type: ignore[no-any-return]
    if shape is _MAPPING:
        return list(value.values())
    return [getattr(value, f.name) for f in dataclasses.fields(value)]


_LEAF, _SEQUENCE, _MAPPING, _DATACLASS = "leaf", "sequence", "mapping", "dataclass"


@functools.lru_cache(maxsize=1024)
def _shape(kind: type) -> str:
    """How :func:`_children` looks inside values of type ``kind`` (decided once per type)."""
    if kind in SEQUENCES or (issubclass(kind, tuple) and hasattr(kind, "_fields")):
        return _SEQUENCE
    if kind is dict or issubclass(kind, Mapping):
        return _MAPPING
    if dataclasses.is_dataclass(kind) and not issubclass(kind, type):
        return _DATACLASS
    if issubclass(kind, (list, tuple, set, frozenset)):
        return _SEQUENCE
    return _LEAF


def _replace_other(value: Any, kind: type, fn: Callable[[Any], Any]) -> Any:
    children = _children(value, kind)
    if children is None:
        return fn(value)
    old = list(children)
    new = [replace(child, fn) for child in old]
    if all(a is b for a, b in zip(new, old, strict=True)):
        return value
    return _rebuild(value, kind, new)


def _rebuild(value: Any, kind: type, items: list[Any]) -> Any:
    """A container like ``value`` holding ``items`` (in the order :func:`_children` gave)."""
    if isinstance(value, tuple) and hasattr(kind, "_fields"):  # a namedtuple
        return kind(*items)
    if isinstance(value, Mapping):
        pairs = dict(zip(value.keys(), items, strict=True))
        factory = getattr(value, "default_factory", None)
        if factory is not None or kind.__name__ == "defaultdict":
            return kind(factory, pairs)
        try:
            return kind(pairs)
        except TypeError:
            return pairs  # a mapping type that cannot be built from a dict: a plain dict
    if dataclasses.is_dataclass(value):
        names = [f.name for f in dataclasses.fields(value) if f.init]
        by_name = dict(zip([f.name for f in dataclasses.fields(value)], items, strict=True))
        return dataclasses.replace(value, **{n: by_name[n] for n in names})
    return kind(items)
