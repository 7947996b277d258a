"""Runs in the run ledger: when each began and how it ended, and the targets it is writing.

Before a run hands its tasks to an executor it records, in one transaction per ledger file,
a ``runs`` row (``running``, with its host and process id) and a ``pending`` row per target
it is about to write. A task's outcome, when written to the ledger, deletes its target's
``pending`` row; the run's end sets its ``ended`` time and status (``finished``,
``interrupted`` on Ctrl-C, ``stopped`` by an error it raised). So a run killed before its
buffered outcomes reached the ledger leaves its ``running`` row and the ``pending`` rows of
the targets it may have written: those targets have no known version (:func:`orphans`).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time

from pipex.stores import owners

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    status TEXT NOT NULL,
    host TEXT,
    pid INTEGER,
    first TEXT
);
CREATE TABLE IF NOT EXISTS pending (path TEXT PRIMARY KEY, run TEXT NOT NULL) WITHOUT ROWID;
"""

#: How a run ended, as the ``runs`` table keeps it (``running`` until it ends).
ENDINGS = ("finished", "interrupted", "stopped")

BEGIN = (
    "INSERT OR IGNORE INTO runs (id, started, status, host, pid, first) "
    "VALUES (?, ?, 'running', ?, ?, ?)"
)
PENDING = "INSERT OR REPLACE INTO pending (path, run) VALUES (?, ?)"
DONE = "DELETE FROM pending WHERE path = ? AND run = ?"
END = "UPDATE runs SET ended = ?, status = ? WHERE id = ?"


def begin(connection: sqlite3.Connection, run: str, paths: list[str]) -> None:
    """Record, in the caller's transaction, that ``run`` is writing the targets ``paths``."""
    connection.execute(BEGIN, (run, time.time(), socket.gethostname(), os.getpid(), paths[0]))
    connection.executemany(PENDING, [(path, run) for path in paths])


def end(connection: sqlite3.Connection, run: str, status: str) -> None:
    """Record how ``run`` ended (one of :data:`ENDINGS`)."""
    connection.execute(END, (time.time(), status, run))


def ending(status: str, host: str | None, pid: int | None) -> str:
    """How a run ended as users see it: its recorded status, except that a ``running`` run
    whose process is gone is ``killed`` (only this host's processes can be looked at:
    another host's run still marked running counts as killed too)."""
    if status != "running":
        return status
    if host != socket.gethostname() or pid is None:
        return "killed"
    return "running" if owners.running(pid) else "killed"


ORPHANS = "SELECT p.path, r.status, r.host, r.pid FROM pending p LEFT JOIN runs r ON r.id = p.run"


def orphans(connection: sqlite3.Connection) -> set[str]:
    """The paths of targets whose latest run may have written them but never recorded how:
    a ``pending`` row of a run that ended or whose process is gone (one query; the table
    holds only the targets of runs in progress, and those orphaned)."""
    verdicts: dict[tuple[object, ...], bool] = {}
    found = set()
    for path, status, host, pid in connection.execute(ORPHANS):
        key = (status, host, pid)
        orphaned = verdicts.get(key)
        if orphaned is None:
            orphaned = verdicts[key] = ending(status or "finished", host, pid) != "running"
        if orphaned:
            found.add(path)
    return found
