"""Implementations named by import string (``"package.module:attribute"``), loaded on use.

The registries of stores (by scheme), executors and modes name what they hold this way, so
that a lower layer can point to code above it, or to an optional dependency, without
importing it: nothing is imported until it is chosen.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any


@functools.cache
def load(spec: str) -> Any:
    """The object ``spec`` names: ``"pipex.stores.file:FileStore"`` (imported once)."""
    return locate(spec)


def locate(spec: str) -> Any:
    """The object ``spec`` names, looked up anew (for objects that may be redefined)."""
    module, _, attribute = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attribute.split(".") if attribute else ():
        obj = getattr(obj, part)
    return obj
