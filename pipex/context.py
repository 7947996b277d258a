"""``pipex.context``: template variables scoped to a ``with`` block (or a decorated function)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_variables: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "pipex_context", default=_EMPTY
)


@contextlib.contextmanager
def context(**variables: Any) -> Iterator[Mapping[str, Any]]:
    """Set template variables (``path``, ``base``, or any name) for the calls made inside.

    Nested contexts add to and override the outer ones; leaving the block restores them.
    Works as ``with pipex.context(...):`` and as a decorator. Thread- and asyncio-safe.
    """
    merged = MappingProxyType({**_variables.get(), **variables})
    token = _variables.set(merged)
    try:
        yield merged
    finally:
        _variables.reset(token)


def current() -> Mapping[str, Any]:
    """The template variables in effect here (read-only)."""
    return _variables.get()
