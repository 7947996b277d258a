"""The heartbeat of claims: one daemon thread per process renews every claim it holds.

Started with the process's first claim (:func:`heartbeat`); a forked child starts its own.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

logger = logging.getLogger("pipex.stores.claims")


class Heartbeat:
    """One daemon thread per process: renews every claim the process holds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.claims: dict[tuple[Any, str], str] = {}
        self.interval = 60.0
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pipex-claims", daemon=True)
        self.thread.start()

    def add(self, store: Any, path: str, owner: str, interval: float) -> None:
        """Renew ``owner``'s claim on ``path`` every ``interval`` seconds (or sooner)."""
        with self.lock:
            self.claims[store, path] = owner
            if interval < self.interval:
                self.interval = interval
                self.wake.set()

    def remove(self, store: Any, path: str) -> None:
        """Stop renewing the claim on ``path`` (a renewal under way finishes first)."""
        with self.lock:
            self.claims.pop((store, path), None)

    def _run(self) -> None:
        while True:
            self.wake.wait(self.interval)
            self.wake.clear()
            with self.lock:
                held = list(self.claims.items())
            for (store, path), owner in held:
                with self.lock:
                    if self.claims.get((store, path)) != owner:
                        continue  # released meanwhile
                    try:
                        store.refresh_claim(path, owner)
                    except Exception as exc:  # a store error now; the next beat tries again
                        logger.warning("pipex: cannot renew the claim on %s: %s", path, exc)


_heartbeats: dict[int, Heartbeat] = {}  # by process id: a forked child starts its own
_start = threading.Lock()


def heartbeat() -> Heartbeat:
    """This process's heartbeat thread, started on first use."""
    pid = os.getpid()
    beat = _heartbeats.get(pid)
    if beat is None:
        with _start:
            beat = _heartbeats.get(pid)
            if beat is None:
                beat = _heartbeats[pid] = Heartbeat()
    return beat
