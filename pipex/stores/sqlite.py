"""``SQLiteStore``: many small targets as rows of one embedded SQLite database."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from typing import IO, Any

from pipex.exceptions import StoreError
from pipex.stores import claims
from pipex.stores.atomic import local_stage, require_file, serializer_for
from pipex.stores.base import Store

#: Seconds a writer waits for another writer (thread or process) to finish.
BUSY_TIMEOUT = 600.0

_SCHEMA = "CREATE TABLE IF NOT EXISTS targets (path TEXT PRIMARY KEY, data BLOB NOT NULL)"
_CLAIMS = (
    "CREATE TABLE IF NOT EXISTS claims (path TEXT PRIMARY KEY, owner TEXT NOT NULL, beat REAL)"
)


class SQLiteStore(Store):
    """Targets as rows (path, bytes) of one SQLite database ``file``, made on first use.

    For many small outputs: no file per target, and existence is one query. The database
    runs in WAL mode: readers never wait, one writer writes at a time (threads sharing the
    store take turns on a lock; other processes wait on SQLite's lock up to
    :data:`BUSY_TIMEOUT` seconds), from any number of threads and processes on one machine
    (not over a network filesystem). A target is one row written in one transaction, so a
    writer killed at any point leaves no row, or a whole one. A claim is a row of the
    ``claims`` table, inserted unless one exists, in one transaction.
    """

    exclusive_claims = True

    __slots__ = ("_hash", "_local", "_lock", "file")

    def __init__(self, file: str | os.PathLike[str]) -> None:
        self.file = os.path.abspath(os.fspath(file))
        self._hash = hash((type(self), self.file))
        self._local = threading.local()  # one connection per thread (sqlite3's rule)
        self._lock = threading.Lock()  # this process's threads write in turn, without polling

    def __repr__(self) -> str:
        return f"SQLiteStore({self.file!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.file == self.file

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        return (SQLiteStore, (self.file,))

    def location(self, path: str) -> str:
        return f"{path} in {self.file}"

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            os.makedirs(os.path.dirname(self.file), exist_ok=True)
            try:
                connection = connect(self.file, BUSY_TIMEOUT, f"{_SCHEMA};\n{_CLAIMS};")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the SQLite store {self.file}: {exc}") from exc
            local.connection, local.pid = connection, os.getpid()
        return local.connection

    # -- primitives ----------------------------------------------------------------------------

    def exists_many(self, paths: Sequence[str]) -> list[bool]:
        """One query for all of ``paths``."""
        if not paths:
            return []
        try:
            rows = self._connection().execute(
                "SELECT path FROM targets WHERE path IN (SELECT value FROM json_each(?))",
                (json.dumps(list(set(paths))),),
            )
            present = {path for (path,) in rows}
        except sqlite3.Error as exc:
            raise StoreError(f"cannot check targets in {self.file}: {exc}") from exc
        return [path in present for path in paths]

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[IO[bytes]]:
        """The row's bytes, in memory."""
        row = (
            self._connection()
            .execute("SELECT data FROM targets WHERE path = ?", (path,))
            .fetchone()
        )
        if row is None:
            raise FileNotFoundError(self.location(path))
        yield io.BytesIO(row[0])

    def stage(self, path: str) -> tuple[str, IO[bytes]]:
        return local_stage(path)

    def stamp(self, path: str) -> str | None:
        """The row's id, size and a checksum of its bytes (a rewrite that gives the same
        row id and bytes is not told apart: it may run once more)."""
        query = "SELECT rowid, data FROM targets WHERE path = ?"
        row = self._connection().execute(query, (path,)).fetchone()
        return None if row is None else f"{row[0]}:{len(row[1])}:{zlib.crc32(row[1]):08x}"

    def commit(self, staged: str, path: str) -> None:
        """Insert (or replace) the row in one transaction, then remove the staged file."""
        require_file(staged, self.location(path))
        with open(staged, "rb") as file:
            self._put(path, file.read())
        os.remove(staged)

    def save(self, path: str, obj: Any) -> None:
        """Serialize ``obj`` in memory, then write its row in one transaction (no local file)."""
        buffer = io.BytesIO()
        serializer_for(path).dump(obj, buffer)
        self._put(path, buffer.getvalue())

    def _put(self, path: str, data: bytes) -> None:
        """Write the row; with the claim this context holds on ``path``, release it in the
        same transaction (:func:`~pipex.stores.claims.staged_in_claim`)."""
        insert = "INSERT OR REPLACE INTO targets (path, data) VALUES (?, ?)"
        if claims.staged_in_claim(self, path) is None:
            self._write(insert, (path, data))
        else:
            self._write(insert, (path, data), "DELETE FROM claims WHERE path = ?", (path,))

    def delete(self, path: str) -> None:
        """Remove the row at ``path``, and the rows below it as a folder."""
        below = path.rstrip("/") + "/"
        self._write(
            "DELETE FROM targets WHERE path = ? OR (path >= ? AND path < ?)",
            (path, below, below[:-1] + "0"),  # "0" follows "/": the range of paths below
        )

    # -- claims --------------------------------------------------------------------------------

    def claim(self, path: str, owner: str) -> bool:
        insert = "INSERT OR IGNORE INTO claims (path, owner, beat) VALUES (?, ?, ?)"
        return self._write(insert, (path, owner, time.time())) == 1

    def claim_holder(self, path: str) -> tuple[str, float] | None:
        query = "SELECT owner, beat FROM claims WHERE path = ?"
        row = self._connection().execute(query, (path,)).fetchone()
        return None if row is None else (row[0], row[1])

    def refresh_claim(self, path: str, owner: str) -> None:
        update = "UPDATE claims SET beat = ? WHERE path = ? AND owner = ?"
        self._write(update, (time.time(), path, owner))

    def release(self, path: str, owner: str) -> None:
        self._write("DELETE FROM claims WHERE path = ? AND owner = ?", (path, owner))

    def claimed(self, folder: str) -> list[str]:
        """The targets of folder ``folder`` that are claimed, sorted (for ``pipex clean``)."""
        below = f"{folder.rstrip('/')}/" if folder else ""
        query = "SELECT path FROM claims WHERE path >= ? AND path < ? ORDER BY path"
        end = below[:-1] + "0" if below else "\U0010ffff"  # "0" follows "/"
        rows = self._connection().execute(query, (below, end))
        return [path for (path,) in rows if "/" not in path[len(below) :]]

    def _write(self, statement: str, parameters: tuple[Any, ...], *more: Any) -> int:
        """Run one statement (and ``more`` statements and parameters after it) in a
        transaction of their own; the number of rows the first changed."""
        connection = self._connection()
        try:
            with self._lock, connection:  # commits, or rolls back on error
                connection.execute("BEGIN IMMEDIATE")  # take the write lock now, or wait
                changed = connection.execute(statement, parameters).rowcount
                for following, values in zip(more[::2], more[1::2], strict=True):
                    connection.execute(following, values)
                return changed
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to the SQLite store {self.file}: {exc}") from exc


def connect(file: str, timeout: float, script: str, **options: Any) -> sqlite3.Connection:
    """A connection to ``file`` in WAL mode (autocommit), ``script`` run on it (its tables).

    Switching a database to WAL fails at once while another connection writes (SQLite's busy
    timeout does not apply there): that is retried for up to ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        connection = sqlite3.connect(file, timeout=timeout, isolation_level=None, **options)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(script)
            return connection
        except sqlite3.OperationalError as exc:
            connection.close()
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        except BaseException:
            connection.close()
            raise
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
