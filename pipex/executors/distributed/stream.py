"""When, how long and where each task ran on a cluster: read from the scheduler's task stream.

The scheduler keeps a record of every finished or erred task (the task stream its dashboard
draws: the worker, the worker's thread, and when the task started and stopped computing).
Before a run submits its tasks, :class:`TaskStream` makes sure the scheduler keeps that
record; as the run's outcomes arrive, :meth:`TaskStream.timings` reads the records added
since the last read (by their position where the scheduler tells it, else by their stop
time with a margin for late arrivals), one request per batch of outcomes, and keeps those of
the run's keys. The scheduler needs nothing of pipex for this; a scheduler that cannot be
read (gone mid-run) leaves the rest of the run untimed, and the run says what happened.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from typing import Any

Timing = tuple[float, float, str]  # started (seconds since the epoch), duration, worker

#: Seconds before the last stop time read that a read by time starts: records reach the
#: scheduler in the order their workers report them, not quite in the order they stopped.
MARGIN = 1.0


class TaskStream:
    """Reads the timing of a run's tasks (their dask ``keys``) from the scheduler of
    ``client``."""

    def __init__(self, client: Any, keys: Collection[Hashable]) -> None:
        self.client = client
        self.keys = set(keys)
        self.found: dict[Hashable, Timing] = {}  # read, not yet asked for
        self.readable = True
        last = self._read(count=1)  # the scheduler starts its record if it had none
        self.since: float | None = _stopped(last[-1]) if last else None
        self.index: int | None = None
        try:  # distributed 2026.8 and later: records by their position
            self.index = client.sync(client.scheduler.get_task_stream_index)
        except Exception:  # an older scheduler: by time
            self.index = None

    def timings(self, keys: Collection[Hashable]) -> dict[Hashable, Timing]:
        """``(started, duration, worker)`` of those of ``keys`` that have stopped (``worker``:
        the worker's address and its thread); reads the scheduler's new records if one of
        them was not read yet."""
        if self.readable and any(key not in self.found for key in keys):
            try:
                self._update()
            except Exception:  # the scheduler is gone (the run says so): no more timings
                self.readable = False
        return {key: self.found.pop(key) for key in keys if key in self.found}

    def _update(self) -> None:
        if self.index is not None:
            entries = self._read(start_index=self.index)
            self.index += len(entries)
        else:
            since = None if self.since is None else self.since - MARGIN
            entries = self._read(start=since)
        for entry in entries:
            stopped = _stopped(entry)
            if self.since is None or stopped > self.since:
                self.since = stopped
            key = _key(entry.get("key"))
            if key not in self.keys:
                continue
            computed = [s for s in entry.get("startstops", ()) if s.get("action") == "compute"]
            if not computed:
                continue
            started = min(s["start"] for s in computed)
            duration = max(s["stop"] for s in computed) - started
            worker = f"{entry.get('worker')}/{entry.get('thread')}"
            self.found[key] = (started, duration, worker)

    def _read(self, **options: Any) -> list[dict[str, Any]]:
        return self.client.sync(self.client.scheduler.get_task_stream, **options)


def _stopped(entry: dict[str, Any]) -> float:
    return max((s["stop"] for s in entry.get("startstops", ())), default=0.0)


def _key(key: Any) -> Hashable:
    """A key as the client knows it (tuples arrive as lists)."""
    return tuple(_key(part) for part in key) if isinstance(key, list) else key
