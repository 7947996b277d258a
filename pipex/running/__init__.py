"""Observers of a run: each is told every task's outcome as it arrives.

The executors report outcomes to one observer; :class:`Observers` hands each to several
(the progress bar, the run report, the run ledger). A new observer is one module with a
``record`` method. An executor that knows when and where a task ran says so first, through
the optional ``timing`` method; one that grows a run (``pipex.expand``) tells of the nodes
it adds through the optional ``planned`` method.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from pipex.core.batch import outcomes


class Observer(Protocol):
    """Told each task's outcome as it arrives (from whatever thread the executor uses)."""

    def record(self, key: str, outcome: Any) -> None: ...


class Observers:
    """Hands each outcome to several observers, in order; ``None`` entries are left out."""

    __slots__ = ("growing", "observers", "timed")

    def __init__(self, observers: Iterable[Observer | None]) -> None:
        self.observers = tuple(o for o in observers if o is not None)
        self.timed = tuple(o for o in self.observers if hasattr(o, "timing"))
        self.growing = tuple(o for o in self.observers if hasattr(o, "planned"))

    def record(self, key: str, outcome: Any) -> None:
        for observer in self.observers:
            observer.record(key, outcome)

    def batch(self, batch: Any, result: Any) -> None:
        """A batch of a mapped step's items finished (:mod:`pipex.core.batch`): one message
        to the observers that take batches, the outcomes one by one to the others."""
        for observer in self.observers:
            take = getattr(observer, "batch", None)
            if take is not None:
                take(batch, result)
            else:
                for key, outcome in outcomes(batch, result):
                    observer.record(key, outcome)

    def timing(self, key: str, started: float, duration: float, worker: str) -> None:
        """When a task started (seconds since the epoch), how long it ran, and where; told
        before its outcome, by executors that know."""
        for observer in self.timed:
            observer.timing(key, started, duration, worker)

    def planned(self, nodes: Sequence[Any]) -> None:
        """More nodes will run (an expansion's), told before their outcomes; to the
        observers that take it."""
        for observer in self.growing:
            observer.planned(nodes)
