"""Reading the run ledger: records of task runs, the latest per target, run summaries.

Every read is one query per ledger file, whatever the number of targets: what failed last
time or is stale is read from the ``targets`` table by status or lineage (few rows), not
target by target. A ledger that does not exist has no records; reading never creates one.
A ledger that cannot be read is reported as a warning and has no records.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.request import pathname2url

from pipex import settings
from pipex.core.grouping import FailureGroup, group
from pipex.running import runs as run_rows
from pipex.running.ledger import home, location

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


FIELDS = ", ".join(Record.__dataclass_fields__)


@contextlib.contextmanager
def reading(file: str | None) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to an existing ledger ``file``; ``None`` if there is none or
    it is broken. A ledger in a folder that cannot be written is read too."""
    if file is None or not os.path.exists(file):
        yield None
        return
    try:
        connection = _read_only(file)
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


def _read_only(file: str) -> sqlite3.Connection:
    """``file`` opened read-only; ``immutable`` when SQLite cannot make the index file a
    WAL database's readers need (a folder that cannot be written: then nobody writes it)."""
    uri = "file:" + pathname2url(os.path.abspath(file))
    connection = sqlite3.connect(uri + "?mode=ro", timeout=30, uri=True)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError:
        connection.close()
    return sqlite3.connect(uri + "?immutable=1", uri=True)


def _warn(file: str, exc: BaseException) -> None:
    logger.warning("pipex: cannot read the run ledger %s (%s); ignoring it", file, exc)


def _rows(file: str | None, query: str, parameters: Sequence[Any], make: Any) -> list[Any]:
    """``make(*row)`` for each row of ``query`` on the ledger ``file`` (none if it is absent)."""
    with reading(file) as connection:
        if connection is None:
            return []
        return [make(*row) for row in connection.execute(query, parameters)]
    return []


def failed_last_time(nodes: Sequence[Any]) -> list[Any]:
    """Those of ``nodes`` whose latest run failed (one read per ledger file; none when
    ``pipex.ledger`` is false)."""
    if not nodes or not settings.get("ledger"):
        return []
    by_store: dict[Any, list[Any]] = {}
    for node in nodes:
        by_store.setdefault(home(node), []).append(node)
    failed: set[int] = set()
    for store, members in by_store.items():
        paths = where(store, "status", ["failed"])
        failed.update(id(node) for node in members if node.target.path in paths)
    return [node for node in nodes if id(node) in failed]


def where(store: Any, column: str, values: Sequence[str]) -> set[str]:
    """The paths of ``store``'s targets whose latest ``status`` (or ``lineage``: of their
    latest run that wrote them) is one of ``values``: one query."""
    if column not in ("status", "lineage"):
        raise ValueError(f"no column {column!r} in the ledger's targets")
    query = f"SELECT path FROM targets WHERE {column} IN (SELECT value FROM json_each(?))"
    with reading(location(store)) as connection:
        if connection is None:
            return set()
        return {path for (path,) in connection.execute(query, (json.dumps(list(values)),))}
    return set()


def pending(store: Any) -> tuple[set[str], dict[str, str]]:
    """The paths of ``store``'s targets that a run which never recorded their outcome may
    have written (their version is unknown), and the stamps, as those runs saw them, of the
    targets that runs still running are writing (:func:`pipex.running.runs.pending`: one
    query; none in a ledger older than that)."""
    with reading(location(store)) as connection:
        if connection is None or not _has(connection, "pending"):
            return set(), {}
        return run_rows.pending(connection)
    return set(), {}


def _has(connection: sqlite3.Connection, table: str) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return connection.execute(query, (table,)).fetchone() is not None


def lineages(store: Any, steps: Sequence[str]) -> list[tuple[str, str, list[Any]]]:
    """``(id, step, [(step, version, code), ...])`` of the lineages of ``steps`` (one query)."""
    query = "SELECT id, step, steps FROM lineages WHERE step IN (SELECT value FROM json_each(?))"
    with reading(location(store)) as connection:
        if connection is None:
            return []
        rows = connection.execute(query, (json.dumps(list(steps)),))
        return [(i, step, [tuple(s) for s in json.loads(found)]) for i, step, found in rows]
    return []


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
    return _rows(file, query, parameters, Record)


@dataclass(frozen=True)
class Run:
    """What one run did, from the ledger."""

    run: str
    started: float  #: when it started (or its earliest task did)
    finished: float  #: when it ended, else the last outcome it recorded
    ran: int  #: of a killed run, with the targets it wrote whose outcomes were not recorded
    failed: int
    not_run: int
    #: "finished", "interrupted" (Ctrl-C), "stopped" (by an error it raised), "killed" (its
    #: process is gone without saying; another host's: no heartbeat for the claims timeout),
    #: "running", or "-" (a ledger older than that record)
    ended: str = "-"


TALLY = (
    "SELECT run, min(coalesce(started, finished)) AS first, max(finished) AS last, "
    "sum(status = 'ran') AS ran, sum(status = 'failed') AS failed, "
    "sum(status = 'not run') AS not_run FROM tasks GROUP BY run"
)

#: The runs of the ``runs`` table with their tallies, and the runs of the tasks without one
#: (those of a ledger older than that table).
RUNS = f"""
WITH t AS ({TALLY}) SELECT * FROM (
    SELECT r.id AS run, min(r.started, coalesce(t.first, r.started)) AS started,
        coalesce(r.ended, t.last, r.started) AS finished, coalesce(t.ran, 0) AS ran,
        coalesce(t.failed, 0) AS failed, coalesce(t.not_run, 0) AS not_run,
        r.status AS status, r.host AS host, r.pid AS pid, {{beat}} AS beat, r.first AS first
    FROM runs r LEFT JOIN t ON t.run = r.id
    UNION ALL
    SELECT run, first, last, ran, failed, not_run, '-', NULL, NULL, NULL, NULL FROM t
    WHERE t.run NOT IN (SELECT id FROM runs)
)
"""

#: The runs of a ledger older than the ``runs`` table, as :data:`RUNS` gives them.
OLD_RUNS = f"""
SELECT * FROM (
    SELECT run, first AS started, last AS finished, ran, failed, not_run, '-' AS status,
        NULL AS host, NULL AS pid, NULL AS beat, NULL AS first
    FROM ({TALLY})
)
"""

#: Only the runs that wrote, or meant to write, one of the targets in the JSON list ``?``.
AMONG = (
    " WHERE run IN (SELECT run FROM tasks WHERE path IN (SELECT value FROM json_each(?)))"
    " OR first IN (SELECT value FROM json_each(?))"
)


def runs(file: str | None, limit: int = 10, paths: Sequence[str] | None = None) -> list[Run]:
    """The latest ``limit`` runs recorded in ``file``, newest first; with ``paths``, only
    those that wrote (or, killed, were writing) one of those targets."""
    with reading(file) as connection:
        if connection is None:
            return []
        has_runs = _has(connection, "runs")
        query = RUNS.format(beat=run_rows.beat_column(connection)) if has_runs else OLD_RUNS
        parameters: list[Any] = []
        if paths is not None:
            query += AMONG
            parameters += [json.dumps(list(paths))] * 2
        query += " ORDER BY started DESC LIMIT ?"
        found = connection.execute(query, [*parameters, limit]).fetchall()
        shown = []
        for run, started, finished, ran, failed, not_run, status, host, pid, beat, _ in found:
            ended = run_rows.ending(status, host, pid, beat) if status != "-" else "-"
            if ended == "killed":  # its last outcomes never reached the ledger
                ran += _written(connection, file, run, started)
            shown.append(Run(run, started, finished, ran, failed, not_run, ended))
        return shown
    return []


def _written(connection: sqlite3.Connection, file: str | None, run: str, started: float) -> int:
    """How many targets a killed ``run`` wrote that its ledger rows do not say: those still
    ``pending`` for it that exist, written since it started (local folders' ledgers only)."""
    folder = os.path.dirname(file or "")
    if os.path.basename(folder) != ".pipex":
        return 0
    root = os.path.dirname(folder)
    count = 0
    for (path,) in connection.execute("SELECT path FROM pending WHERE run = ?", (run,)):
        try:
            count += os.stat(os.path.join(root, path)).st_mtime >= started
        except OSError:
            continue
    return count


@dataclass(frozen=True)
class Failed:
    """A target whose latest run failed, as :func:`pipex.core.grouping.group` reads it."""

    step: str
    line: str  #: the exception's last line as the ledger keeps it ("ValueError: bad input")
    target: str
    path: str  #: the target's path in its store
    traceback: str

    @property
    def key(self) -> str:
        """The task's key (``"<step>-<path>"``, as for a target in the working directory's
        store)."""
        return f"{self.step}-{self.path}"

    @property
    def error(self) -> str:
        """The exception's type name (without its module)."""
        head, _, _ = self.line.partition(": ")
        return head.rsplit(".", 1)[-1] if _ERROR_TYPE.match(head) else "Error"

    @property
    def message(self) -> str:
        head, sep, rest = self.line.partition(": ")
        return rest if sep and _ERROR_TYPE.match(head) else self.line


_ERROR_TYPE = re.compile(r"^[A-Za-z_][\w.]*$")


def failed(file: str | None, paths: Sequence[str] | None = None) -> list[Failed]:
    """The targets whose latest record is a failure, in the order they failed; with
    ``paths``, of those targets only."""
    query = (
        "SELECT t.step, coalesce(t.error, ''), t.target, t.path, coalesce(t.traceback, '') "
        "FROM tasks t "
        "JOIN (SELECT max(id) AS id FROM tasks GROUP BY path) m ON t.id = m.id "
        f"WHERE t.status = 'failed'{_among(paths, 't.path')} ORDER BY t.id"
    )
    return _rows(file, query, _paths(paths), Failed)


def failing(
    file: str | None, limit: int = 10, paths: Sequence[str] | None = None
) -> list[FailureGroup]:
    """The targets whose latest record is a failure grouped by step and error
    (:mod:`pipex.core.grouping`), the ``limit`` largest groups; with ``paths``, of those
    targets only."""
    return group(failed(file, paths))[:limit]


def _among(paths: Sequence[str] | None, column: str) -> str:
    """The condition that ``column`` is one of ``paths`` (none without them)."""
    return "" if paths is None else f" AND {column} IN (SELECT value FROM json_each(?))"


def _paths(paths: Sequence[str] | None) -> tuple[str, ...]:
    return () if paths is None else (json.dumps(list(paths)),)


@dataclass(frozen=True)
class Timing:
    """How long one step's timed runs took."""

    step: str
    runs: int
    mean: float
    longest: float
    total: float


def slowest(file: str | None, limit: int = 10, paths: Sequence[str] | None = None) -> list[Timing]:
    """The steps whose runs took longest on average (runs with a known duration only); with
    ``paths``, the runs of those targets only."""
    query = (
        "SELECT step, count(*), avg(duration), max(duration), sum(duration) FROM tasks "
        f"WHERE status = 'ran' AND duration IS NOT NULL{_among(paths, 'path')} GROUP BY step "
        "ORDER BY avg(duration) DESC LIMIT ?"
    )
    return _rows(file, query, (*_paths(paths), limit), Timing)
