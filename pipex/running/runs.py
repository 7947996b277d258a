"""Runs in the run ledger: when each began and how it ended, and the targets it is writing.

Before a run hands its tasks to an executor it records, in one transaction per ledger file,
a ``runs`` row (``running``, with its host and process id) and a ``pending`` row per target
it is about to write, with the target's stamp as the run saw it (``Store.stamp``; empty: it
was missing; null: unknown). A task's outcome, when written to the ledger, deletes its target's
``pending`` row; the run's end sets its ``ended`` time and status (``finished``,
``interrupted`` on Ctrl-C, ``stopped`` by an error it raised). So a run killed before its
buffered outcomes reached the ledger leaves its ``running`` row and the ``pending`` rows of
the targets it may have written: those targets have no known version (:func:`pending`). A
target pending for a run that still runs and whose stamp changed since that run saw it was
written by that run (or by a runner it waited for): its outcome is on its way to the ledger,
and another run reading the ledger meanwhile takes it as written now, not as the ledger says.

Whether a run still marked ``running`` runs: a process of this host is looked at
(:func:`pipex.stores.owners.running`); another host's cannot be, so the running client
refreshes its run's ``beat`` (a heartbeat, every third of ``pipex.claims.timeout``), and a
run of another host runs while its heartbeat is younger than that timeout. So on a shared
filesystem a run on host B does not make host A take the targets B is writing as orphans
(stale under ``version=`` / ``rerun: code``), and a run killed on B counts as killed once its
heartbeat is old.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable

from pipex.stores import claims, owners

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    status TEXT NOT NULL,
    host TEXT,
    pid INTEGER,
    first TEXT,
    beat REAL
);
CREATE TABLE IF NOT EXISTS pending (
    path TEXT PRIMARY KEY, run TEXT NOT NULL, stamp TEXT
) WITHOUT ROWID;
"""

#: How a run ended, as the ``runs`` table keeps it (``running`` until it ends).
ENDINGS = ("finished", "interrupted", "stopped")

BEGIN = (
    "INSERT OR IGNORE INTO runs (id, started, status, host, pid, first, beat) "
    "VALUES (?, ?, 'running', ?, ?, ?, ?)"
)
PENDING = "INSERT OR REPLACE INTO pending (path, run, stamp) VALUES (?, ?, ?)"
DONE = "DELETE FROM pending WHERE path = ? AND run = ?"
END = "UPDATE runs SET ended = ?, status = ? WHERE id = ?"
BEAT = "UPDATE runs SET beat = ? WHERE id = ?"


def begin(connection: sqlite3.Connection, run: str, paths: list[tuple[str, str | None]]) -> None:
    """Record, in the caller's transaction, that ``run`` is writing the targets ``paths``
    (``(path, stamp)``: the target's stamp as the run saw it, ``""`` missing, ``None``
    unknown)."""
    with contextlib.suppress(sqlite3.OperationalError):  # a ledger made before heartbeats
        connection.execute("ALTER TABLE runs ADD COLUMN beat REAL")
    with contextlib.suppress(sqlite3.OperationalError):  # one made before pending stamps
        connection.execute("ALTER TABLE pending ADD COLUMN stamp TEXT")
    now = time.time()
    first = paths[0][0]
    connection.execute(BEGIN, (run, now, socket.gethostname(), os.getpid(), first, now))
    connection.executemany(PENDING, [(path, run, stamp) for path, stamp in paths])


def end(connection: sqlite3.Connection, run: str, status: str | None) -> None:
    """Record how ``run`` ended (one of :data:`ENDINGS`); ``None``: that it still runs (its
    heartbeat)."""
    if status is None:
        connection.execute(BEAT, (time.time(), run))
    else:
        connection.execute(END, (time.time(), status, run))


class Heartbeat:
    """Calls ``beat`` every third of ``pipex.claims.timeout`` from a thread of its own, until
    :meth:`stop`: a running client's proof to other hosts that its run is alive."""

    def __init__(self, beat: Callable[[], object]) -> None:
        self._stopped = threading.Event()
        self._beat = beat
        self._thread = threading.Thread(target=self._loop, name="pipex-run-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.wait(claims.timeout() / 3):
            self._beat()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def ending(status: str, host: str | None, pid: int | None, beat: float | None = None) -> str:
    """How a run ended as users see it: its recorded status, except that a ``running`` run
    that no longer runs is ``killed``: a process of this host that is gone, or a run of
    another host whose heartbeat (``beat``, seconds since the epoch) is older than
    ``pipex.claims.timeout``."""
    if status != "running":
        return status
    if host != socket.gethostname() or pid is None:
        alive = beat is not None and time.time() - beat < claims.timeout()
        return "running" if alive else "killed"
    return "running" if owners.running(pid) else "killed"


def beat_column(connection: sqlite3.Connection) -> str:
    """The SQL of a run's last heartbeat in the ``runs`` table ``r`` (its start in a ledger
    made before heartbeats)."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(runs)")}
    return "coalesce(r.beat, r.started)" if "beat" in columns else "r.started"


ORPHANS = (
    "SELECT p.path, {stamp}, r.status, r.host, r.pid, {beat} FROM pending p LEFT JOIN runs r "
    "ON r.id = p.run"
)


def pending(connection: sqlite3.Connection) -> tuple[set[str], dict[str, str]]:
    """In one query (the table holds only the targets of runs in progress, and those
    orphaned): the paths of targets whose latest run may have written them but never
    recorded how (a ``pending`` row of a run that ended or no longer runs); and the stamps,
    as they were seen, of the targets that runs still running are writing (where known)."""
    verdicts: dict[tuple[object, ...], bool] = {}
    found = set()
    writing = {}
    columns = {row[1] for row in connection.execute("PRAGMA table_info(pending)")}
    query = ORPHANS.format(
        stamp="p.stamp" if "stamp" in columns else "NULL", beat=beat_column(connection)
    )
    for path, stamp, status, host, pid, beat in connection.execute(query):
        key = (status, host, pid, beat)
        orphaned = verdicts.get(key)
        if orphaned is None:
            verdict = ending(status or "finished", host, pid, beat)
            orphaned = verdicts[key] = verdict != "running"
        if orphaned:
            found.add(path)
        elif stamp is not None:
            writing[path] = stamp
    return found, writing
