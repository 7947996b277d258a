"""SQLiteStore specifics: made on first use, WAL mode, a writer killed inside its transaction.

What every store does is in test_conformance.py.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import pipex
from tests.integration.processes import environment

_HALF_WRITE = textwrap.dedent(
    """
    import sys, time
    import pipex

    store = pipex.SQLiteStore(sys.argv[1])
    connection = store._connection()
    connection.execute("BEGIN IMMEDIATE")
    connection.execute(
        "INSERT INTO targets (path, data) VALUES (?, ?)", ("out/half.pkl", b"x" * 1_000_000)
    )
    print("row inserted, not committed", flush=True)
    time.sleep(120)
    """
)


def test_the_database_is_made_on_first_use_in_wal_mode(tmp_path):
    store = pipex.SQLiteStore(tmp_path / "sub" / "targets.db")
    assert not (tmp_path / "sub").exists()
    store.save("a.json", [1])
    with sqlite3.connect(store.file) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("SELECT count(*) FROM targets").fetchone() == (1,)


def test_delete_removes_a_row_and_the_rows_below_it(tmp_path):
    store = pipex.SQLiteStore(tmp_path / "targets.db")
    for path in ["out/t.zarr", "out/t.zarr/0.pkl", "out/t.zarr0.pkl", "out/t.zarr.pkl"]:
        store.save(path if path.endswith(".pkl") else path + "/x.pkl", path)
    store.delete("out/t.zarr")
    assert store.exists_many(["out/t.zarr/x.pkl", "out/t.zarr/0.pkl"]) == [False, False]
    assert store.exists_many(["out/t.zarr0.pkl", "out/t.zarr.pkl"]) == [True, True]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_writer_killed_inside_its_transaction_leaves_no_row(tmp_path):
    store = pipex.SQLiteStore(tmp_path / "targets.db")
    store.save("out/other.pkl", 1)
    proc = subprocess.Popen(
        [sys.executable, "-c", _HALF_WRITE, store.file],
        stdout=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        assert proc.stdout.readline().strip() == "row inserted, not committed"
        assert store.exists_many(["out/half.pkl", "out/other.pkl"]) == [False, True]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.stdout.close()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    fresh = pipex.SQLiteStore(store.file)  # a new connection, as after a restart
    assert fresh.exists_many(["out/half.pkl", "out/other.pkl"]) == [False, True]
    fresh.save("out/half.pkl", "written after")  # the lock was released
    assert store.load("out/half.pkl") == "written after"


def test_a_store_opened_while_another_connection_writes_waits_for_it(tmp_path):
    """Switching a new database to WAL needs a moment with no writer: SQLite refuses it at
    once (its busy timeout does not apply), so the store's first open waits and retries."""
    import threading

    file = tmp_path / "targets.db"
    writer = sqlite3.connect(file, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO other VALUES (1)")
    released = threading.Timer(0.5, lambda: writer.execute("COMMIT"))
    released.start()
    try:
        store = pipex.SQLiteStore(file)
        assert store.exists_many(["a.pkl"]) == [False]  # on main: "database is locked"
        store.save("a.pkl", 1)
        assert store.load("a.pkl") == 1
    finally:
        released.join()
        writer.close()
