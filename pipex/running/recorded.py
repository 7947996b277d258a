"""The ledger's word on targets moved aside and put back: ``pipex.invalidate`` keeps it with
the trashed bytes, ``pipex.restore`` writes it back with them.

A target's word is its row of the ledger's ``targets`` table (its latest status and the
lineage of the run that wrote it: what staleness compares) and its ``pending`` mark, if a run
that never recorded its outcome wrote it (its version is unknown: :mod:`pipex.running.runs`).
Putting old bytes back with a newer run's row would make them count as current after a
``version`` bump; putting their own row back makes them stale again. Two queries per ledger
file either way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from pipex import settings
from pipex.running.ledger import connect, location
from pipex.running.records import reading

logger = logging.getLogger("pipex")

TARGETS = (
    "SELECT path, status, lineage FROM targets WHERE path IN (SELECT value FROM json_each(?))"
)
PENDING = "SELECT path, run FROM pending WHERE path IN (SELECT value FROM json_each(?))"

#: A target's row: ``[status, lineage, pending run]``; ``None`` where the ledger has none.
Row = list[str | None] | None


def rows(store: Any, paths: Sequence[str]) -> dict[str, Row]:
    """The ledger rows of ``store``'s targets at ``paths`` (``None`` for those it has none
    of); empty when ``pipex.ledger`` is false or the store has no ledger."""
    file = location(store)
    if not paths or file is None or not settings.get("ledger"):
        return {}
    found: dict[str, Row] = dict.fromkeys(paths)
    wanted = (json.dumps(list(paths)),)
    with reading(file) as connection:
        if connection is not None:
            for path, status, lineage in connection.execute(TARGETS, wanted):
                found[path] = [status, lineage, None]
            with contextlib.suppress(sqlite3.OperationalError):  # a ledger without marks
                for path, run in connection.execute(PENDING, wanted):
                    found[path] = [*(found[path] or [None, None])[:2], run]
    return found


def put_back(store: Any, kept: Mapping[str, Row]) -> None:
    """Make ``kept`` (from :func:`rows`) the ledger rows of these targets again: a target
    that had none has none after. A ledger that cannot be written is a warning."""
    file = location(store)
    if not kept or file is None or not settings.get("ledger") or not os.path.exists(file):
        return  # no ledger: no row to replace
    try:
        connection = connect(file)
        try:
            connection.execute("BEGIN IMMEDIATE")
            full = {path: [*(row or ()), None, None, None][:3] for path, row in kept.items()}
            connection.executemany(
                "INSERT OR REPLACE INTO targets (path, status, lineage) VALUES (?, ?, ?)",
                [(path, status, lineage) for path, (status, lineage, _) in full.items() if status],
            )
            connection.executemany(
                "DELETE FROM targets WHERE path = ?",
                [(path,) for path, (status, _, _) in full.items() if not status],
            )
            connection.executemany(
                "INSERT OR REPLACE INTO pending (path, run) VALUES (?, ?)",
                [(path, run) for path, (_, _, run) in full.items() if run],
            )
            connection.executemany(
                "DELETE FROM pending WHERE path = ?",
                [(path,) for path, (_, _, run) in full.items() if not run],
            )
            connection.execute("COMMIT")
        finally:
            connection.close()
    except sqlite3.Error as exc:
        logger.warning(
            "pipex: cannot write the run ledger %s (%s); the restored targets keep the "
            "record of their last run, not their own",
            file,
            exc,
        )
