"""``pipex.context``: template variables scoped to a ``with`` block (or a decorated function)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from pipex.collector import deferred

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_variables: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "pipex_context", default=_EMPTY
)


@contextlib.contextmanager
def context(**variables: Any) -> Iterator[Mapping[str, Any]]:
    """Set template variables (``path``, ``base``, or any name) for the calls made inside.

    Nested contexts add to and override the outer ones; leaving the block restores them.
    Works as ``with pipex.context(...):`` and as a decorator. Thread- and asyncio-safe.
    Graphs are built in such blocks, so the garbage collector runs less often inside
    (:func:`pipex.collector.deferred`; the tasks of a run see the usual thresholds).
    """
    merged = MappingProxyType({**_variables.get(), **variables})
    token = _variables.set(merged)
    try:
        with deferred():
            yield merged
    finally:
        _variables.reset(token)


#: ``current()``: the template variables in effect here (read-only). The context variable's
#: own ``get``, called once per node built.
current: Callable[[], Mapping[str, Any]] = _variables.get
