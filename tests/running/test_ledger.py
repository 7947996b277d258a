"""The run ledger: what it records, failed last time, skip_failed, and that it is optional."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest

import pipex
from pipex.running.ledger import location
from pipex.stores import MemoryStore, SQLiteStore

ROOT = Path(__file__).resolve().parents[2]


def chains(calls: list[tuple[str, int]], bad: set[int], store=None):
    """Two-step chains ``load -> scale`` whose ``load`` raises for ``i`` in ``bad``."""

    @pipex.task(target="out/load/{i}.pkl", store=store)
    def load(i: int) -> int:
        calls.append(("load", i))
        if i in bad:
            raise ValueError(f"bad input {i}")
        return i

    @pipex.task(target="out/scale/{i}.pkl", store=store, version="1")
    def scale(x: int, i: int) -> int:
        calls.append(("scale", i))
        return x * 10

    return [scale(load(i), i) for i in range(4)]


def ledger_rows(folder) -> list[tuple]:
    with sqlite3.connect(folder / ".pipex" / "ledger.sqlite") as connection:
        return connection.execute(
            "SELECT path, step, status, error, version, run FROM tasks ORDER BY path"
        ).fetchall()


def test_the_ledger_records_each_task_run_with_a_failure_and_its_traceback(workdir):
    roots = chains([], bad={2})
    with pytest.raises(pipex.PipelineError):
        pipex.compute(roots, progress=False)

    rows = ledger_rows(workdir)
    assert [(p, step, status) for p, step, status, *_ in rows] == [
        ("out/load/0.pkl", "load", "ran"),
        ("out/load/1.pkl", "load", "ran"),
        ("out/load/2.pkl", "load", "failed"),
        ("out/load/3.pkl", "load", "ran"),
        ("out/scale/0.pkl", "scale", "ran"),
        ("out/scale/1.pkl", "scale", "ran"),
        ("out/scale/2.pkl", "scale", "not run"),
        ("out/scale/3.pkl", "scale", "ran"),
    ]
    assert len({row[-1] for row in rows}) == 1  # one run id per pipex.compute
    assert {row[4] for row in rows if row[1] == "scale"} == {"1"}
    (failed,) = pipex.history(status="failed")
    assert failed.path == "out/load/2.pkl" and failed.error == "ValueError: bad input 2"
    assert "Traceback" in failed.traceback and "bad input 2" in failed.traceback
    assert failed.target == os.path.join(str(workdir), "out", "load", "2.pkl")
    assert failed.started is not None and failed.duration >= 0  # the local executor times it
    assert failed.code and failed.worker
    assert [r.path for r in pipex.history(step="scale", status="not run")] == ["out/scale/2.pkl"]
    assert len(pipex.history(run=failed.run, limit=3)) == 3


def test_status_shows_failed_last_time_and_skip_failed_leaves_it_alone(workdir):
    calls: list[tuple[str, int]] = []
    bad = {2}
    roots = chains(calls, bad)
    with pytest.raises(pipex.PipelineError):
        pipex.compute(roots, progress=False)

    status = pipex.status(roots)
    assert [t.path for t in status.failed] == ["out/load/2.pkl"]
    assert status.steps["load"].failed == 1 and status.steps["scale"].failed == 0
    assert status.rows()[-1] == ("total", 3, 2, 1, 3)  # the loads below done scales

    calls.clear()
    results = pipex.compute(roots, progress=False, skip_failed=True)
    assert calls == []  # the failed task and what needs it are left alone
    assert results.summary.skipped == 2 and results.summary.failed == 0
    assert "skipped 2 (failed last time" in str(results.summary)
    assert [t.path for t in results.skipped] == ["out/load/2.pkl", "out/scale/2.pkl"]
    assert results[0][2] == roots[2].target and not results[0][2].exists()
    assert pipex.compute(roots, skip_failed=True, load=True)[0][2] is None

    bad.clear()  # fixed: without skip_failed, it runs again
    pipex.compute(roots, progress=False)
    assert sorted(calls) == [("load", 2), ("scale", 2)]
    assert pipex.status(roots).failed == []


def test_deleting_the_ledger_changes_nothing_in_default_mode(workdir):
    calls: list[tuple[str, int]] = []
    roots = chains(calls, bad=set())
    pipex.compute(roots, progress=False)
    os.remove(workdir / ".pipex" / "ledger.sqlite")
    calls.clear()

    assert pipex.compute(roots, progress=False).summary.ran == 0
    assert calls == []
    assert pipex.history() == [] and pipex.status(roots).failed == []
    os.remove(workdir / "out" / "scale" / "1.pkl")  # a versioned task's target, unrecorded
    pipex.compute(roots, progress=False)
    assert calls == [("scale", 1)]


def test_the_ledger_can_be_turned_off(workdir):
    with dask.config.set({"pipex.ledger": False}):
        pipex.compute(chains([], bad=set()), progress=False)
    assert not (workdir / ".pipex").exists()
    assert pipex.history() == []


def test_an_unwritable_ledger_warns_and_the_run_goes_on(workdir, caplog):
    (workdir / ".pipex").write_text("a file where the ledger's folder would be")
    results = pipex.compute(chains([], bad=set()), progress=False)
    assert results.summary.ran == 8
    assert "cannot write the run ledger" in caplog.text


def test_ledgers_of_remote_roots_live_in_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    remote = location(SQLiteStore(tmp_path / "one.sqlite"))
    assert remote is not None and remote.startswith(str(tmp_path / "cache" / "pipex"))
    assert remote != location(SQLiteStore(tmp_path / "two.sqlite"))
    assert not (tmp_path / "cache").exists()  # made only when written
    assert location(MemoryStore()) is None  # its targets die with the process
    assert location(pipex.FileStore(tmp_path)) == str(tmp_path / ".pipex" / "ledger.sqlite")


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_the_first_failure_is_recorded_without_keep_going(workdir, scheduler):
    roots = chains([], bad={0})
    with pytest.raises(ValueError, match="bad input 0") as info:
        pipex.compute(roots, keep_going=False, scheduler=scheduler, progress=False)
    assert any("out/load/0.pkl" in note for note in info.value.__notes__)  # kept as raised

    (failed,) = pipex.history(status="failed")
    assert failed.path == "out/load/0.pkl" and failed.error == "ValueError: bad input 0"
    assert "Traceback" in failed.traceback and "bad input 0" in failed.traceback
    assert pipex.status(roots).steps["load"].failed == 1


def test_targets_under_an_absolute_root_share_one_ledger_from_any_folder(tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls: list[tuple[str, int]] = []

    def roots():
        @pipex.task(target="{path}/load/{i}.pkl")
        def load(i: int) -> int:
            calls.append(("load", i))
            if i == 1:
                raise ValueError("bad input 1")
            return i

        with pipex.context(path=str(out)):
            return [load(i) for i in range(3)]

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    with pytest.raises(pipex.PipelineError):
        pipex.compute(roots(), progress=False)
    assert (out / ".pipex" / "ledger.sqlite").exists()  # beside the outputs
    assert not (first / ".pipex").exists()

    monkeypatch.chdir(second)  # another working directory: the same ledger
    (failed,) = pipex.history(str(out), status="failed")
    assert failed.error == "ValueError: bad input 1"
    assert pipex.status(roots()).steps["load"].failed == 1
    calls.clear()
    results = pipex.compute(roots(), skip_failed=True, progress=False)
    assert calls == [] and results.summary.skipped == 1


def test_a_raised_os_error_is_recorded_and_raised_as_it_is(workdir):
    @pipex.task(target="out/read/{i}.pkl")
    def read(i: int) -> int:
        raise FileNotFoundError(2, "no such input", f"in-{i}.txt")

    with pytest.raises(FileNotFoundError) as info:
        pipex.compute(read(0), keep_going=False, scheduler="sync", progress=False)
    assert info.value.filename == "in-0.txt"
    (failed,) = pipex.history(status="failed")
    assert failed.path == "out/read/0.pkl"
    assert "no such input" in failed.error and "pipex task" not in failed.error


READ_ONLY = """
import sys
from click.testing import CliRunner
import pipex
from pipex.cli import main

print(len(pipex.history(status="failed")))
print(CliRunner().invoke(main, ["log"]).output)

@pipex.task(target="more/{i}.pkl")
def more(i):
    return i

print(pipex.compute([more(i) for i in range(3)], progress=False).summary.ran)
"""


def test_a_read_only_ledger_is_read_and_a_run_beside_it_warns_once(workdir):
    with pytest.raises(pipex.PipelineError):
        pipex.compute(chains([], bad={2}), progress=False)
    folder = workdir / ".pipex"
    for file in folder.iterdir():
        file.chmod(0o444)
    folder.chmod(0o555)
    (workdir / "read_only.py").write_text(READ_ONLY)
    # root ignores permissions: a user namespace of its own makes it an ordinary owner
    prefix = ["unshare", "--user"] if os.geteuid() == 0 else []
    if prefix and subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root, and no user namespace to drop that in")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "read_only.py"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    failed, *log, ran = proc.stdout.strip().splitlines()
    assert failed == "1"  # pipex.history reads it
    assert "ValueError: bad input 2" in "\n".join(log)  # so does pipex log
    assert ran == "3"  # the run goes on
    assert proc.stderr.count("run ledger") == 1, proc.stderr  # one warning, which says why
    assert f"the run ledger {folder / 'ledger.sqlite'} is read-only" in proc.stderr


HOLD = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
time.sleep(300)
"""


def test_a_ledger_locked_by_another_process_is_said_at_once(workdir, caplog):
    pipex.compute(chains([], bad=set()), progress=False)
    file = workdir / ".pipex" / "ledger.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(file)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "holding\n"
        (workdir / "out" / "scale" / "1.pkl").unlink()
        start = time.monotonic()
        results = pipex.compute(chains([], bad=set()), progress=False)
        assert time.monotonic() - start < 20  # not SQLite's busy timeout of 30 s
    finally:
        holder.kill()
        holder.wait()
    assert results.summary.ran == 1
    assert f"the run ledger {file} is locked by another process" in caplog.text
    assert caplog.text.count("run ledger") == 1


def test_a_run_records_how_it_ended_and_clears_its_marks(workdir):
    with pytest.raises(pipex.PipelineError):
        pipex.compute(chains([], bad={2}), progress=False)
    with pytest.raises(ValueError):
        pipex.compute(chains([], bad={2}), keep_going=False, scheduler="sync", progress=False)
    with sqlite3.connect(workdir / ".pipex" / "ledger.sqlite") as connection:
        ended = connection.execute("SELECT status, pid FROM runs ORDER BY started").fetchall()
        marks = connection.execute("SELECT path FROM pending").fetchall()
    assert ended == [("finished", os.getpid()), ("stopped", os.getpid())]
    assert marks == [("out/scale/2.pkl",)]  # never run: the run stopped first


def test_credentials_in_an_error_are_not_recorded(workdir):
    @pipex.task(target="out/fetch/{i}.pkl")
    def fetch(i: int) -> int:
        raise OSError(f"cannot read https://user:s3cr3t@host/data/{i}.csv?token=t0k3n")

    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(fetch(1), progress=False)
    assert "s3cr3t" not in str(info.value) and "t0k3n" not in str(info.value)
    (record,) = pipex.history()
    assert record.error == "OSError: cannot read https://***@host/data/1.csv?token=***"
    assert "s3cr3t" not in record.traceback and "t0k3n" not in record.traceback
    assert "https://***@host/data/1.csv" in record.traceback


@pytest.mark.parametrize("scheduler", ["threads", "sync", "processes"])
def test_every_local_scheduler_records_when_how_long_and_where_each_task_ran(workdir, scheduler):
    before = time.time()
    with pytest.raises(pipex.PipelineError):
        pipex.compute(chains([], bad={2}), scheduler=scheduler, progress=False)
    after = time.time()

    records = [r for r in pipex.history(limit=None) if r.status != "not run"]
    assert len(records) == 7
    for record in records:
        assert record.started is not None and before <= record.started <= after, record
        assert record.duration is not None and 0 <= record.duration <= after - before, record
        assert record.worker, record
