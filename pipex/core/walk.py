"""The one walker over a call's arguments: which containers pipex looks inside.

Upstream nodes, input placeholders and targets can sit anywhere inside the arguments of a
call. Every place that looks for them or swaps them walks the arguments with :func:`visit`
or :func:`replace`, so the containers searched are defined once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Containers searched item by item (dicts: by value).
SEQUENCES = (list, tuple, set, frozenset)


def visit(value: Any, fn: Callable[[Any], object]) -> None:
    """Call ``fn`` on every value inside ``value`` that is not a container."""
    kind = type(value)
    if kind in SEQUENCES:
        for item in value:
            visit(item, fn)
    elif kind is dict:
        for item in value.values():
            visit(item, fn)
    else:
        fn(value)


def replace(value: Any, fn: Callable[[Any], Any]) -> Any:
    """``value`` with every non-container ``x`` inside it replaced by ``fn(x)``.

    Containers are rebuilt only where something inside them changed, so ``replace(v, f) is
    v`` tells that ``f`` changed nothing. A plain function, not a closure: a recursive closure
    is a reference cycle that would keep every value it produced alive until the garbage
    collector runs.
    """
    kind = type(value)
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
    return fn(value)
