"""Python's cyclic garbage collector made rarer while pipex builds and resolves graphs.

Building 100,000 nodes allocates a few hundred thousand objects that all live on; with
Python's default thresholds the collector runs every 700 allocations and traverses them
again and again (a third of the build time). Inside :func:`deferred` the youngest
generation's threshold is raised, so collections are rarer but still happen (the collector
is never switched off); inside :func:`resumed` (a run's tasks) the thresholds in effect
before are back. When the last block ends, in whatever thread, those thresholds are restored.

The collector's thresholds are one setting for the whole process, so the count of blocks
open is too: it lives in one lock-guarded :class:`_Blocks` here.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

#: The youngest generation's threshold inside :func:`deferred` (Python's default: 700).
DEFERRED_THRESHOLD = 100_000


class _Blocks:
    """How many :func:`deferred` and :func:`resumed` blocks are open, and the thresholds
    to restore when none is."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deferred = 0
        self.resumed = 0
        self.saved: tuple[int, ...] | None = None

    def change(self, deferred: int, resumed: int) -> None:
        """Count blocks opening (+1) or closing (-1), and set the thresholds they call for."""
        with self.lock:
            if self.saved is None:
                self.saved = gc.get_threshold()
            self.deferred += deferred
            self.resumed += resumed
            saved = self.saved
            if self.deferred and not self.resumed and saved[0]:
                gc.set_threshold(max(saved[0], DEFERRED_THRESHOLD), *saved[1:])
            else:
                gc.set_threshold(*saved)
            if not self.deferred and not self.resumed:
                self.saved = None


_BLOCKS = _Blocks()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Collect garbage less often inside: many long-lived objects are being allocated."""
    _BLOCKS.change(+1, 0)
    try:
        yield
    finally:
        _BLOCKS.change(-1, 0)


@contextlib.contextmanager
def resumed() -> Iterator[None]:
    """Collect garbage as usual inside, even within :func:`deferred` (user code runs)."""
    _BLOCKS.change(0, +1)
    try:
        yield
    finally:
        _BLOCKS.change(0, -1)
