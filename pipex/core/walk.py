"""The one walker over a call's arguments: which containers pipex looks inside.

Upstream nodes, input placeholders and targets can sit anywhere inside the arguments of a
call: in lists, tuples (named ones too), sets, dicts and other mappings, and dataclass
instances. Every place that looks for them or swaps them walks the arguments with
:func:`visit` or :func:`replace`, so the containers searched are defined once, here.
Values nested to any depth are walked: past :data:`DEEP` levels a loop takes over from the
quick recursive walk, and refuses a container found inside itself.
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


#: How deep the quick recursive walk goes before a loop takes over (values nested deeper
#: than this are rare, and would exhaust Python's recursion limit).
DEEP = 50


def visit(value: Any, fn: Callable[[Any], object], depth: int = 0) -> None:
    """Call ``fn`` on every value inside ``value`` that is not a container, in order."""
    kind: type = type(value)  # not type[Any], which mypy finds unhashable
    if kind in ATOMS or (kind not in SEQUENCES and _shape(kind) is _LEAF):
        fn(value)
    elif depth < DEEP:
        for child in _children(value, kind):  # type: ignore[union-attr]
            visit(child, fn, depth + 1)
    else:
        _visited(value, kind, fn)


def replace(value: Any, fn: Callable[[Any], Any], depth: int = 0) -> Any:
    """``value`` with every non-container ``x`` inside it replaced by ``fn(x)``.

    Containers are rebuilt only where something inside them changed, so ``replace(v, f) is
    v`` tells that ``f`` changed nothing. A plain function, not a closure: a recursive closure
    is a reference cycle that would keep every value it produced alive until the garbage
    collector runs.
    """
    kind: type = type(value)  # not type[Any], which mypy finds unhashable
    if kind in ATOMS:
        return fn(value)
    if depth >= DEEP:
        if kind not in SEQUENCES and kind is not dict and _shape(kind) is _LEAF:
            return fn(value)
        return _rebuilt(value, kind, fn, False)
    if kind in SEQUENCES:
        items = [replace(item, fn, depth + 1) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return kind(items)
    if kind is dict:
        changed = {k: replace(v, fn, depth + 1) for k, v in value.items()}
        if all(changed[k] is v for k, v in value.items()):
            return value
        return changed
    children = _children(value, kind)
    if children is None:  # a node, a target, any other object
        return fn(value)
    old = list(children)
    new = [replace(child, fn, depth + 1) for child in old]
    if all(a is b for a, b in zip(new, old, strict=True)):
        return value
    return _rebuild(value, kind, new)


def copy(value: Any, depth: int = 0) -> Any:
    """``value`` with every container rebuilt (its leaves shared): a snapshot of its structure."""
    kind: type = type(value)  # not type[Any], which mypy finds unhashable
    if kind in ATOMS:
        return value
    if depth >= DEEP:
        if kind not in SEQUENCES and kind is not dict and _shape(kind) is _LEAF:
            return value
        return _rebuilt(value, kind, _same, True)
    if kind in SEQUENCES:
        return kind([copy(item, depth + 1) for item in value])
    if kind is dict:
        return {k: copy(v, depth + 1) for k, v in value.items()}
    children = _children(value, kind)
    if children is None:
        return value
    return _rebuild(value, kind, [copy(child, depth + 1) for child in children])


def _same(value: Any) -> Any:
    return value


def _visited(value: Any, kind: type, fn: Callable[[Any], object]) -> None:
    """:func:`visit` of a deeply nested container, in a loop."""
    path = {id(value): None}  # the containers being walked, innermost last
    stack = [iter(_children(value, kind))]  # type: ignore[arg-type]
    while stack:
        for child in stack[-1]:
            kind = type(child)
            if kind in ATOMS or (kind not in SEQUENCES and _shape(kind) is _LEAF):  # type: ignore[arg-type]
                fn(child)
                continue
            _enter(path, child)
            stack.append(iter(_children(child, kind)))  # type: ignore[arg-type]
            break
        else:
            stack.pop()
            path.popitem()


def _items(value: Any, kind: type) -> list[Any]:
    if kind is dict:
        return list(value.values())
    return list(_children(value, kind))  # type: ignore[arg-type]


def _rebuilt(value: Any, kind: type, fn: Callable[[Any], Any], fresh: bool) -> Any:
    """:func:`replace` (``fresh``: :func:`copy`) of a deeply nested container, in a loop."""
    path = {id(value): None}
    items = _items(value, kind)
    new: list[Any] = []
    stack = [(value, kind, items, new)]  # the containers being rebuilt, innermost last
    while True:
        for child in items[len(new) :]:
            kind = type(child)
            if kind in ATOMS or (
                kind not in SEQUENCES and kind is not dict and _shape(kind) is _LEAF  # type: ignore[arg-type]
            ):
                new.append(fn(child))
                continue
            _enter(path, child)
            items = _items(child, kind)
            new = []
            stack.append((child, kind, items, new))
            break
        else:
            value, kind, items, new = stack.pop()
            path.popitem()
            if not fresh and all(a is b for a, b in zip(new, items, strict=True)):
                result = value
            elif kind in SEQUENCES:
                result = kind(new)
            elif kind is dict:
                result = dict(zip(value.keys(), new, strict=True))
            else:
                result = _rebuild(value, kind, new)
            if not stack:
                return result
            _, _, items, new = stack[-1]
            new.append(result)


def _enter(path: dict[int, None], container: Any) -> None:
    """Note that ``container`` is being walked; refuse one found inside itself."""
    ident = id(container)
    if ident in path:
        raise ValueError(
            f"an argument holds a {type(container).__name__} that contains itself; pipex "
            "cannot copy or search it. Pass a value without such a cycle."
        )
    path[ident] = None


def _children(value: Any, kind: type) -> Iterator[Any] | list[Any] | None:
    """The items of a container (dict-like: its values), or ``None`` for a leaf."""
    shape = _shape(kind)
    if shape is _LEAF:
        return None
    if shape is _SEQUENCE:
        return value
    if shape is _MAPPING:
        return list(value.values())
    return [getattr(value, f.name) for f in dataclasses.fields(value)]


_LEAF, _SEQUENCE, _MAPPING, _DATACLASS = "leaf", "sequence", "mapping", "dataclass"


# mypy refuses a ``type[Any]`` (what ``type(x)`` of an ``Any`` gives) as lru_cache's Hashable
# argument: callers annotate ``kind: type`` or ignore that ``arg-type`` error.
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
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = [f.name for f in dataclasses.fields(value) if f.init]
        by_name = dict(zip([f.name for f in dataclasses.fields(value)], items, strict=True))
        return dataclasses.replace(value, **{n: by_name[n] for n in names})
    return kind(items)
