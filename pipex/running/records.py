"""Reading the run ledger: records of task runs, the latest per target, run summaries.

Every read is one query per ledger file for any number of targets (the paths go in as one
JSON parameter). A ledger that does not exist has no records; reading never creates one.
A ledger that cannot be read is reported as a warning and has no records.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pipex import settings
from pipex.running.ledger import location

logger = logging.getLogger("pipex")

STATUSES = ("ran", "failed", "not run")


@dataclass(frozen=True)
class Record:
    """One task run, as the ledger keeps it (times in seconds since the epoch)."""

    run: str  #: the id of the pipex.compute call it belonged to
    target: str  #: the target's location
    path: str  #: the target's path in its store
    step: str  #: the task's name
    status: str  #: "ran", "failed" or "not run"
    started: float | None  #: when it started, where the executor can tell
    duration: float | None  #: how long it ran, where the executor can tell
    finished: float  #: when the client heard of its outcome
    worker: str | None
    error: str | None  #: the exception's last line (for "not run": the failed inputs)
    traceback: str | None
    version: str | None  #: the task's version option
    code: str  #: a fingerprint of the task's code


@dataclass(frozen=True)
class Latest:
    """The latest record of one target: what staleness and "failed last time" read."""

    status: str
    version: str | None
    code: str
    lineage: str
    error: str | None


FIELDS = ", ".join(Record.__dataclass_fields__)


@contextlib.contextmanager
def reading(file: str | None) -> Iterator[sqlite3.Connection | None]:
    """A connection to an existing ledger ``file``; ``None`` if there is none or it is broken."""
    if file is None or not os.path.exists(file):
        yield None
        return
    try:
        connection = sqlite3.connect(file, timeout=30)
    except sqlite3.Error as exc:
        _warn(file, exc)
        yield None
        return
    try:
        yield connection
    except sqlite3.Error as exc:
        _warn(file, exc)
    finally:
        connection.close()


def _warn(file: str, exc: BaseException) -> None:
    logger.warning("pipex: cannot read the run ledger %s (%s); ignoring it", file, exc)


def latest(targets: Sequence[Any], status: str | None = None) -> list[Latest | None]:
    """The latest record of each target (only records of ``status``, if given), or ``None``.

    One query per ledger file, whatever the number of targets.
    """
    by_store: dict[Any, list[int]] = {}
    for i, target in enumerate(targets):
        by_store.setdefault(target.store, []).append(i)
    found: list[Latest | None] = [None] * len(targets)
    for store, indexes in by_store.items():
        rows: dict[str, Latest] = {}
        with reading(location(store)) as connection:
            if connection is not None:
                rows = _latest(connection, [targets[i].path for i in indexes], status)
        for i in indexes:
            found[i] = rows.get(targets[i].path)
    return found


def failed_last_time(nodes: Sequence[Any]) -> list[Any]:
    """Those of ``nodes`` whose latest run failed (one read per ledger file; none when
    ``pipex.ledger`` is false)."""
    if not nodes or not settings.get("ledger"):
        return []
    found = latest([node.target for node in nodes])
    return [node for node, r in zip(nodes, found, strict=True) if r and r.status == "failed"]


def _latest(
    connection: sqlite3.Connection, paths: list[str], status: str | None
) -> dict[str, Latest]:
    only = "AND status = ?" if status is not None else ""
    query = (
        "SELECT t.path, t.status, t.version, t.code, t.lineage, t.error FROM tasks t JOIN "
        "(SELECT max(id) AS id FROM tasks WHERE path IN (SELECT value FROM json_each(?)) "
        f"{only} GROUP BY path) m ON t.id = m.id"
    )
    parameters: tuple[Any, ...] = (json.dumps(paths),) + ((status,) if status else ())
    return {row[0]: Latest(*row[1:]) for row in connection.execute(query, parameters)}


def lineages(store: Any, ids: Sequence[str]) -> dict[str, list[tuple[str, str | None, str]]]:
    """The steps of each lineage id: ``[(step, version, code), ...]`` (one query)."""
    with reading(location(store)) as connection:
        if connection is None:
            return {}
        rows = connection.execute(
            "SELECT id, steps FROM lineages WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(ids)),),
        )
        return {i: [tuple(step) for step in json.loads(steps)] for i, steps in rows}
    return {}


def records(
    file: str | None,
    *,
    step: str | None = None,
    status: str | None = None,
    run: str | None = None,
    path: str | None = None,
    limit: int | None = None,
) -> list[Record]:
    """Records of the ledger ``file``, newest first, filtered by each argument given."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    where, parameters = [], []
    for column, value in (("step", step), ("status", status), ("run", run), ("path", path)):
        if value is not None:
            where.append(f"{column} = ?")
            parameters.append(value)
    query = f"SELECT {FIELDS} FROM tasks"
    if where:
        query += " WHERE " + " AND ".join(where)
    query += " ORDER BY id DESC"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    with reading(file) as connection:
        if connection is None:
            return []
        return [Record(*row) for row in connection.execute(query, parameters)]
    return []


@dataclass(frozen=True)
class Run:
    """What one run did, from the ledger."""

    run: str
    started: float  #: the earliest start (or arrival) among its tasks
    finished: float  #: the last arrival
    ran: int
    failed: int
    not_run: int


def runs(file: str | None, limit: int = 10) -> list[Run]:
    """The latest ``limit`` runs recorded in ``file``, newest first."""
    query = (
        "SELECT run, min(coalesce(started, finished)), max(finished), sum(status = 'ran'), "
        "sum(status = 'failed'), sum(status = 'not run') FROM tasks GROUP BY run "
        "ORDER BY max(id) DESC LIMIT ?"
    )
    with reading(file) as connection:
        if connection is None:
            return []
        return [Run(*row) for row in connection.execute(query, (limit,))]
    return []


@dataclass(frozen=True)
class Failing:
    """Targets whose latest run failed with one error."""

    error: str
    count: int
    example: str  #: one of the targets
    step: str  #: its step


def failing(file: str | None, limit: int = 10) -> list[Failing]:
    """The errors of targets whose latest record is a failure, most frequent first."""
    query = (
        "SELECT t.error, count(*), min(t.target), min(t.step) FROM tasks t JOIN "
        "(SELECT max(id) AS id FROM tasks GROUP BY path) m ON t.id = m.id "
        "WHERE t.status = 'failed' GROUP BY t.error ORDER BY count(*) DESC LIMIT ?"
    )
    with reading(file) as connection:
        if connection is None:
            return []
        return [Failing(*row) for row in connection.execute(query, (limit,))]
    return []


@dataclass(frozen=True)
class Timing:
    """How long one step's timed runs took."""

    step: str
    runs: int
    mean: float
    longest: float
    total: float


def slowest(file: str | None, limit: int = 10) -> list[Timing]:
    """The steps whose runs took longest on average (runs with a known duration only)."""
    query = (
        "SELECT step, count(*), avg(duration), max(duration), sum(duration) FROM tasks "
        "WHERE status = 'ran' AND duration IS NOT NULL GROUP BY step "
        "ORDER BY avg(duration) DESC LIMIT ?"
    )
    with reading(file) as connection:
        if connection is None:
            return []
        return [Timing(*row) for row in connection.execute(query, (limit,))]
    return []
