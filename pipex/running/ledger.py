"""The run ledger: every task run's outcome, kept in one SQLite file per store root.

Written only by the client, as an observer of a run's outcomes (never by workers): per
task run its target, step, status (``ran``, ``failed``, ``not run``), start, duration and
worker (its thread or process) where the executor can tell (dask's local schedulers, and
clusters through the scheduler's task stream; elsewhere they are null and ``finished`` is
when the client heard of the outcome), error and
traceback, the task's ``version``, a fingerprint of its code, and the lineage (the steps
at and below it, with their versions and code) that the opt-in staleness checks compare.
The ``targets`` table keeps each target's latest status and the lineage of its latest
``ran`` record, so that reads find what failed or is stale without a scan per target.
Outcomes are buffered; what a crash would lose of them is covered by the run's ``runs`` and
``pending`` rows, written before its tasks run (:mod:`pipex.running.runs`).

Where it lives: ``<root>/.pipex/ledger.sqlite`` for a local folder (an absolute ``{path}``
root counts as the root of the targets below it: :func:`home`); for other stores, a file
in ``$XDG_CACHE_HOME/pipex/ledgers/`` (default ``~/.cache``) named by a token of the store's
location, made when first written. ``MemoryStore`` targets have none (they die with the
process). Nothing depends on the ledger for correctness except the opt-ins: deleting it
forgets history, nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pipex.core.outcomes import Failure, NotRun, Waited, one_line
from pipex.core.tokens import token
from pipex.redact import redact
from pipex.running import items, runs
from pipex.running.lineages import Lineages
from pipex.running.unwritable import LOCK_SECONDS, unwritable
from pipex.stores import sqlite
from pipex.stores.file import FileStore

logger = logging.getLogger("pipex")

SCHEMA = (
    """
PRAGMA user_version = 2;
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    run TEXT NOT NULL,
    path TEXT NOT NULL,
    target TEXT NOT NULL,
    step TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL,
    duration REAL,
    finished REAL NOT NULL,
    worker TEXT,
    error TEXT,
    traceback TEXT,
    version TEXT,
    code TEXT NOT NULL,
    lineage TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_path ON tasks (path, id);
CREATE TABLE IF NOT EXISTS lineages (id TEXT PRIMARY KEY, step TEXT NOT NULL, steps TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS lineages_by_step ON lineages (step);
CREATE TABLE IF NOT EXISTS targets (path TEXT PRIMARY KEY, status TEXT NOT NULL, lineage TEXT);
"""
    + runs.SCHEMA
)

#: Each target's latest status, and the lineage of its latest run that wrote it.
LATEST = (
    "INSERT INTO targets (path, status, lineage) VALUES (?, ?, ?) ON CONFLICT (path) DO "
    "UPDATE SET status = excluded.status, lineage = coalesce(excluded.lineage, lineage)"
)

INSERT = (
    "INSERT INTO tasks (run, path, target, step, status, started, duration, finished, worker,"
    " error, traceback, version, code, lineage) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)

#: Buffered outcomes are written once this many have arrived, or this many seconds passed.
FLUSH_ROWS = 5000
FLUSH_SECONDS = 5.0


def location(store: Any) -> str | None:
    """The ledger file of ``store``'s root (``None`` for stores that die with the process)."""
    try:
        root = store.fspath("")
    except TypeError:
        if getattr(store, "protocol", None) == "memory":
            return None
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        name = token(type(store).__name__, store.location(""))[:20]
        return os.path.join(cache, "pipex", "ledgers", f"{name}.sqlite")
    return os.path.join(root, ".pipex", "ledger.sqlite")


def home(node: Any) -> Any:
    """The store whose ledger records ``node``: its target's store, except for a target
    written by absolute path below the absolute ``{path}`` root it was built under (the
    ``pipex.context`` or ``pipex.path`` setting): that folder's, so that runs started from
    any working directory share one ledger beside the outputs."""
    target = node.target
    path = target.path
    if not os.path.isabs(path):
        return target.store
    root = node.context.get("path", node.origin.path)
    if type(root) is not str or not os.path.isabs(root):
        return target.store
    root = os.path.normpath(root)
    if not path.startswith(root.rstrip(os.sep) + os.sep):
        return target.store
    return _folder(root)


@functools.lru_cache(maxsize=64)
def _folder(root: str) -> FileStore:
    return FileStore(root)


def connect(file: str) -> sqlite3.Connection:
    """A connection to the ledger ``file``, made with its tables if it is new (WAL mode).

    Waits up to :data:`LOCK_SECONDS` for another process's lock, then raises.
    """
    os.makedirs(os.path.dirname(file), exist_ok=True)
    return sqlite.connect(file, LOCK_SECONDS, SCHEMA, check_same_thread=False)


def new_run_id() -> str:
    """A run id that sorts by time: ``20261129-115132-3f2a9c``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class Ledger:
    """An observer of one :func:`pipex.compute` call that writes its outcomes to the ledgers.

    ``nodes`` are the nodes that may run (the plan's missing nodes); ``rewrites`` the plan's
    stale ones with their stamps (``Plan.rewrites``). :meth:`start` records, before they run,
    that this run writes their targets (as it saw them: :mod:`pipex.running.runs`); outcomes
    are buffered and written in one transaction per batch (``executemany``), on :meth:`flush`
    and every :data:`FLUSH_ROWS` outcomes or :data:`FLUSH_SECONDS`; :meth:`close` records how
    the run ended. A ledger that cannot be written is reported once, as a warning, and the
    run goes on.
    """

    def __init__(
        self,
        nodes: Sequence[Any],
        run: str | None = None,
        families: Mapping[Any, bytearray] | None = None,
        rewrites: Mapping[str, str | None] | None = None,
    ) -> None:
        self.run = run or new_run_id()
        self.rewrites = rewrites
        self.nodes = {node.key: node for node in nodes}
        self.lineages = Lineages()
        self.families = families or {}  # mapped steps: their items' rows come in batches
        self.steps = items.Steps(self.lineages.id, home)
        self._buffer: list[tuple[str, Any, float, tuple[Any, ...] | None]] = []
        self._timings: dict[str, tuple[float, float, str]] = {}
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._files: dict[Any, sqlite3.Connection | None] = {}
        self._written: dict[str, set[str]] = {}  # file -> lineage ids already written
        self._writer: ThreadPoolExecutor | None = None  # SQLite is written on this thread
        self._pending: list[Future[None]] = []
        self._started: set[Any] = set()  # the stores whose ledger has this run's row
        self._heart: runs.Heartbeat | None = None

    def start(self) -> None:
        """Record durably, before anything runs, that this run writes its nodes' targets;
        then refresh the run's heartbeat until :meth:`close`."""
        self._mark(list(self.nodes.values()), self.rewrites)
        by_store = items.pending(self.families, self.steps)
        if by_store:
            unknown = {store: [(p, None) for p in paths] for store, paths in by_store.items()}
            self._submit(self._begin, unknown).result()
        self._heart = runs.Heartbeat(functools.partial(self._submit, self._end, None))

    def planned(self, nodes: Sequence[Any]) -> None:
        """Record the outcomes of these nodes too (an expansion's), and, before they run,
        that this run writes their targets."""
        self.nodes.update({node.key: node for node in nodes})
        self._mark(nodes)

    def _mark(
        self, nodes: Sequence[Any], rewrites: Mapping[str, str | None] | None = None
    ) -> None:
        """Their pending rows, with the stamps of ``rewrites`` (``""``, missing, elsewhere)."""
        by_store: dict[Any, list[tuple[str, str | None]]] = {}
        for node in nodes:
            stamp = None if rewrites is None else rewrites.get(node.key, "")
            by_store.setdefault(home(node), []).append((node.target.path, stamp))
        if by_store:
            self._submit(self._begin, by_store).result()

    def timing(self, key: str, started: float, duration: float, worker: str) -> None:
        """When a task started (seconds since the epoch), how long it ran, and where."""
        self._timings[key] = (started, duration, worker)

    def batch(self, batch: Any, result: Any) -> None:
        """Buffer a batch of items' outcomes (a row per item, made on the writer thread)."""
        with self._lock:
            self._buffer.append(("", (batch, result), time.time(), None))
        self._hand_over()

    def record(self, key: str, outcome: Any) -> None:
        """Buffer one outcome; hand the buffer to the writer thread when it is full or old.

        The scheduler's thread that reports outcomes never waits for SQLite.
        """
        row = (key, outcome, time.time(), self._timings.pop(key, None))
        with self._lock:  # flush may hand the buffer over from another thread meanwhile
            self._buffer.append(row)
        if len(self._buffer) >= FLUSH_ROWS or time.monotonic() - self._last > FLUSH_SECONDS:
            self._hand_over()

    def flush(self) -> None:
        """Write every outcome recorded so far, and wait until it is written."""
        self._hand_over()
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self, ended: str = "finished") -> None:
        """Write what is buffered and how the run ``ended`` (one of
        :data:`~pipex.running.runs.ENDINGS`), close the files and stop the writer thread."""
        if self._heart is not None:
            self._heart.stop()
        self.flush()
        if self._writer is not None:
            self._writer.submit(self._end, ended).result()
            self._writer.submit(self._close_files).result()
            self._writer.shutdown(wait=True)
            self._writer = None

    def _submit(self, fn: Any, *args: Any) -> Future[None]:
        with self._lock:
            return self._thread().submit(fn, *args)

    def _thread(self) -> ThreadPoolExecutor:
        """The writer thread, started when first needed (call with the lock held)."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="pipex-ledger")
        return self._writer

    def _hand_over(self) -> None:
        with self._lock:
            buffer, self._buffer = self._buffer, []
            self._last = time.monotonic()
            if buffer:
                self._pending.append(self._thread().submit(self._write_buffer, buffer))

    def _begin(self, by_store: dict[Any, list[tuple[str, str | None]]]) -> None:
        """On the writer thread: this run's row and its targets' pending rows, one
        transaction per ledger file."""
        for store, paths in by_store.items():
            connection = self._connection(store)
            if connection is not None:
                with self._guard(location(store) or ""), _transaction(connection):
                    runs.begin(connection, self.run, paths)
                self._started.add(store)

    def _end(self, ended: str | None) -> None:
        for store in self._started:
            connection = self._files.get(store)
            if connection is not None:
                with self._guard(location(store) or ""), _transaction(connection):
                    runs.end(connection, self.run, ended)

    def _write_buffer(self, buffer: list[tuple[str, Any, float, Any]]) -> None:
        """On the writer thread: one transaction per ledger file."""
        by_store: dict[Any, list[tuple[Any, ...]]] = {}
        for key, outcome, finished, timing in buffer:
            if not key:  # a batch of items
                batch, result = outcome
                for store, more in items.rows(
                    self.run, self.steps, batch, result, finished
                ).items():
                    by_store.setdefault(store, []).extend(more)
                continue
            node = self.nodes.get(key)
            if node is not None:
                rows = by_store.setdefault(home(node), [])
                if isinstance(outcome, Waited):  # found or waited for: only its mark goes
                    rows.append((None, node.target.path))
                else:
                    rows.append(self._row(node, outcome, finished, timing))
        for store, rows in by_store.items():
            self._write(store, rows)

    def _close_files(self) -> None:
        for connection in self._files.values():
            if connection is not None:
                connection.close()
        self._files.clear()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _row(
        self, node: Any, outcome: Any, finished: float, timing: tuple[Any, ...] | None
    ) -> tuple[Any, ...]:
        target = node.target
        error = trace = None
        if isinstance(outcome, Failure):
            status = "failed"
            error, trace = redact(one_line(outcome.exception)), outcome.traceback
            trace = redact(trace) if trace else trace
        elif isinstance(outcome, NotRun):
            status = "not run"
            error = "an input failed: " + ", ".join(sorted(outcome.causes)[:3])
        else:
            status = "ran"
        started, duration, worker = timing if timing is not None else (None, None, None)
        task = node.task
        return (
            self.run,
            target.path,
            str(target),
            task.name,
            status,
            started,
            duration,
            finished,
            worker,
            error,
            trace,
            task.version,
            task.code,
            self.lineages.id(node),
        )

    def _connection(self, store: Any) -> sqlite3.Connection | None:
        """The writer's connection to ``store``'s ledger (``None``: none, or not writable)."""
        if store not in self._files:
            file = location(store)
            self._files[store] = None
            if file is not None:
                with self._guard(file):
                    self._files[store] = connect(file)
        return self._files[store]

    def _write(self, store: Any, rows: list[tuple[Any, ...]]) -> None:
        connection = self._connection(store)
        if connection is None:
            return
        file = location(store) or ""
        waited = [(row[1], self.run) for row in rows if row[0] is None]
        rows = [row for row in rows if row[0] is not None]
        written = self._written.setdefault(file, set())
        new = {row[-1] for row in rows} - written
        with self._guard(file):
            with _transaction(connection):
                if new:
                    connection.executemany(
                        "INSERT OR IGNORE INTO lineages (id, step, steps) VALUES (?, ?, ?)",
                        self.lineages.rows(new),
                    )
                connection.executemany(INSERT, rows)
                connection.executemany(
                    LATEST, [(r[1], r[4], r[-1] if r[4] == "ran" else None) for r in rows]
                )
                connection.executemany(runs.DONE, [(r[1], self.run) for r in rows] + waited)
            written.update(new)

    @contextlib.contextmanager
    def _guard(self, file: str) -> Iterator[None]:
        """Warn once and stop writing ``file`` when it cannot be written; the run goes on."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            logger.warning("pipex: %s", unwritable(file, exc))
            for store, connection in list(self._files.items()):
                if connection is not None and location(store) == file:
                    connection.close()
                    self._files[store] = None


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
