"""Worker plugin :class:`MemoryRelease`: hand freed memory back to the operating system.

After tasks finish, ``gc.collect()`` and glibc's ``malloc_trim(0)`` (at most once per
interval on each worker).
"""

from __future__ import annotations

import ctypes
import gc
import time
from collections.abc import Callable
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin


class MemoryRelease(WorkerPlugin):
    """After tasks finish, release freed memory to the OS: ``gc.collect()`` + ``malloc_trim(0)``.

    glibc keeps memory freed by many small allocations (in thread arenas, or below a live
    allocation) mapped into the process; ``malloc_trim(0)`` returns it. At most once per
    ``interval`` seconds: a task finishing sooner after the last release schedules one at the
    end of the interval. Without glibc only ``gc.collect()`` runs.
    """

    name = "pipex-memory-release"
    idempotent = True

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last = 0.0
        self._timer: Any = None
        self._worker: Any = None

    def setup(self, worker: Any) -> None:
        self._worker = worker

    def teardown(self, worker: Any) -> None:
        if self._timer is not None:
            worker.loop.remove_timeout(self._timer)
            self._timer = None

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if start in ("executing", "long-running") and self._timer is None:
            wait = self._last + self.interval - time.monotonic()
            if wait <= 0:
                self._release()
            else:
                self._timer = self._worker.loop.call_later(wait, self._release)

    def _release(self) -> None:
        self._timer = None
        release_memory()
        self._last = time.monotonic()


def release_memory() -> bool:
    """``gc.collect()``, then glibc's ``malloc_trim(0)``; whether memory could be trimmed."""
    gc.collect()
    trim = _malloc_trim()
    return bool(trim is not None and trim(0))


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return None
