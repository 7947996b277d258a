"""Observers of a run: each is told every task's outcome as it arrives.

The executors report outcomes to one observer; :class:`Observers` hands each to several
(the progress bar, the run report). A new observer is one module with a ``record`` method.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class Observer(Protocol):
    """Told each task's outcome as it arrives (from whatever thread the executor uses)."""

    def record(self, key: str, outcome: Any) -> None: ...


class Observers:
    """Hands each outcome to several observers, in order."""

    __slots__ = ("observers",)

    def __init__(self, observers: Iterable[Observer]) -> None:
        self.observers = tuple(observers)

    def record(self, key: str, outcome: Any) -> None:
        for observer in self.observers:
            observer.record(key, outcome)
