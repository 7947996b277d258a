"""Claims another runner holds: a runner goes on with the other work and comes back to the
claimed targets; a stopped owner loses its claims with its heartbeat; a waiting runner says
what it waits for. Real runner processes on one folder."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from pipex.stores import owners
from pipex.stores.claims import held
from pipex.stores.file import FileStore
from tests.integration.processes import environment

TASKS = 10

#: TASKS independent tasks ``step(i)`` under argv[1] on argv[2] threads; each call appends
#: "step i" to argv[3]; with argv[4] set, ``step(0)`` waits for that file to exist.
SCRIPT = textwrap.dedent(
    f"""
    import json, os, sys, time
    import pipex

    root, threads, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    hold = sys.argv[4] if len(sys.argv) > 4 else None

    @pipex.task(target="{{path}}/step/{{i}}.pkl")
    def step(i):
        descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(descriptor, f"step {{i}}\\n".encode())
        os.close(descriptor)
        while hold and i == 0 and not os.path.exists(hold):
            time.sleep(0.02)
        return i * 10

    with pipex.context(path=root):
        nodes = [step(i) for i in range({TASKS})]
    results = pipex.compute(nodes, load=True, progress=False, num_workers=threads)
    summary = results.summary
    print(json.dumps({{"ran": summary.ran, "waited": summary.waited, "values": results[0]}}))
    """
)


@pytest.fixture
def start(tmp_path):
    """``start(threads, *args, env=...)``: the pipeline script in a new process."""
    script = tmp_path / "pipeline.py"
    script.write_text(SCRIPT)
    started: list[subprocess.Popen[str]] = []

    def run(threads: int, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        command = [sys.executable, str(script), str(tmp_path / "out"), str(threads)]
        process = subprocess.Popen(
            [*command, str(tmp_path / "calls.log"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(env),
            cwd=tmp_path,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        if process.poll() is None:
            process.kill()
        process.communicate()


def finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[dict, str]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def wait_until(condition, what: str, timeout: float = 120) -> None:
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        pause.wait(0.02)


VALUES = [i * 10 for i in range(TASKS)]


def test_a_runner_goes_on_with_unclaimed_work_and_comes_back_to_the_claimed(start, tmp_path):
    """Half the targets are claimed by this (live) process: the runner, on one thread, writes
    every other target meanwhile, then waits for the claimed ones and counts them waited."""
    store = FileStore(str(tmp_path / "out"))
    claimed = [f"step/{i}.pkl" for i in range(0, TASKS, 2)]
    free = [tmp_path / "out" / "step" / f"{i}.pkl" for i in range(1, TASKS, 2)]
    with contextlib.ExitStack() as stack:
        for path in claimed:
            assert stack.enter_context(held(store, path))
        runner = start(1)
        wait_until(lambda: all(p.exists() for p in free), "the unclaimed targets written")
        assert runner.poll() is None  # it waits for the claimed ones
        for path in claimed:
            store.save(path, int(path.split("/")[1].split(".")[0]) * 10)
    result, _ = finish(runner)

    assert sorted(calls(tmp_path)) == sorted(f"step {i}" for i in range(1, TASKS, 2))
    assert (result["ran"], result["waited"]) == (TASKS // 2, TASKS // 2)
    assert result["values"] == VALUES


def test_a_stopped_runner_loses_its_claims_with_its_heartbeat(start, tmp_path):
    """``kill -STOP`` on a runner holding a claim: another runner takes the claim over once
    its heartbeat is older than the timeout, and does all the work."""
    env = {"DASK_PIPEX__CLAIMS__TIMEOUT": "2s"}
    stopped = start(2, str(tmp_path / "never"), env=env)
    wait_until(lambda: "step 0" in calls(tmp_path), "step 0 started")
    claim = tmp_path / "out" / "step" / ".0.pkl.pipex-claim"
    assert claim.exists()
    os.kill(stopped.pid, signal.SIGSTOP)
    wait_until(lambda: psutil.Process(stopped.pid).status() == "stopped", "stopped")

    result, err = finish(start(2, env=env), timeout=120)

    assert result["values"] == VALUES
    assert calls(tmp_path).count("step 0") == 2  # started by the stopped one, taken over
    assert f"process {stopped.pid} on {socket.gethostname()} (this host), is stopped" in err
    assert not claim.exists()


def test_a_waiting_runner_says_what_it_waits_for(start, tmp_path):
    hold = tmp_path / "hold"
    holder = start(1, str(hold))
    wait_until(lambda: "step 0" in calls(tmp_path), "step 0 started")
    waiting = start(2)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(waiting.stderr), daemon=True)
    reader.start()
    said = f"{socket.gethostname()} pid {holder.pid}"
    wait_until(lambda: any(said in line for line in lines), "a waiting message")
    hold.touch()
    waiting.wait(120)
    reader.join(10)
    finish(holder)

    message = next(line for line in lines if said in line)
    assert "waiting for 1 target(s) claimed by another runner, since" in message
    assert "step/0.pkl" in message
    assert f"{said}, sleeping" in message or f"{said}, running" in message
    assert sum(said in line for line in lines) <= 1 + len(lines) // 2  # not a flood


def _record(process: psutil.Process) -> str:
    return json.dumps(
        {
            "host": socket.gethostname(),
            "pid": process.pid,
            "start": process.create_time(),
            "id": "x",
        }
    )


def test_a_stopped_owner_of_this_host_holds_its_claim_while_its_heartbeat_is_young():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        process = psutil.Process(child.pid)
        owner = _record(process)
        old = time.time() - 60
        assert not owners.expired((owner, old), 2)  # running: its process decides
        child.send_signal(signal.SIGSTOP)
        wait_until(lambda: process.status() == "stopped", "stopped")
        assert not owners.expired((owner, time.time()), 2)
        assert owners.expired((owner, old), 2)
        assert "is stopped" in owners.why_expired((owner, old), 2)
    finally:
        child.kill()
        child.wait()
    assert owners.expired((owner, time.time()), 2)  # gone: at once


#: TASKS tasks ``versioned(i)`` of version argv[2] under argv[1], one thread; each call
#: appends "versioned i" to argv[3]. With argv[4] set, two threads, ``versioned(0)`` waits
#: for that file to exist, and no outcome reaches the ledger before the run ends.
VERSIONED = textwrap.dedent(
    f"""
    import json, os, sys, time
    import pipex
    from pipex.running import ledger

    root, version, log = sys.argv[1], sys.argv[2], sys.argv[3]
    hold = sys.argv[4] if len(sys.argv) > 4 else None
    if hold:
        ledger.FLUSH_SECONDS = 3600.0  # its rows stay buffered while it runs

    @pipex.task(target="{{path}}/versioned/{{i}}.pkl", version=version)
    def versioned(i):
        descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(descriptor, f"versioned {{i}}\\n".encode())
        os.close(descriptor)
        while hold and i == 0 and not os.path.exists(hold):
            time.sleep(0.02)
        return (version, i)

    with pipex.context(path=root):
        nodes = [versioned(i) for i in range({TASKS})]
    results = pipex.compute(nodes, load=True, progress=False, num_workers=2 if hold else 1)
    summary = results.summary
    print(json.dumps({{"ran": summary.ran, "waited": summary.waited, "values": results[0]}}))
    """
)


def test_a_stale_target_another_runner_rewrote_meanwhile_is_not_rewritten_again(tmp_path):
    """After a version bump, a stale target claimed by another runner, which rewrites it,
    is waited for: its function is not called a second time."""
    script = tmp_path / "versioned.py"
    script.write_text(VERSIONED)
    log = tmp_path / "calls.log"

    def runner(version: str) -> subprocess.Popen[str]:
        command = [sys.executable, str(script), str(tmp_path / "out"), version, str(log)]
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, env=environment(), cwd=tmp_path
        )

    assert finish(runner("1"))[0]["ran"] == TASKS
    log.unlink()
    store = FileStore(str(tmp_path / "out"))
    claimed = "versioned/0.pkl"
    with held(store, claimed, rewrite=True):  # as another runner of version 2
        bumped = runner("2")
        try:
            wait_until(lambda: len(calls(tmp_path)) == TASKS - 1, "the other targets rewritten")
            store.save(claimed, ("2", 0))
        finally:
            if bumped.poll() is None and not (tmp_path / "out" / claimed).exists():
                bumped.kill()
    result, _ = finish(bumped)

    assert sorted(calls(tmp_path)) == sorted(f"versioned {i}" for i in range(1, TASKS))
    assert (result["ran"], result["waited"]) == (TASKS - 1, 1)
    assert result["values"] == [["2", i] for i in range(TASKS)]


def runs(out: Path) -> int:
    """How many runs the ledger beside ``out`` knows (a run's row is written once it has
    resolved what it runs, before any task)."""
    with contextlib.closing(sqlite3.connect(out / ".pipex" / "ledger.sqlite")) as ledger:
        return int(ledger.execute("SELECT count(*) FROM runs").fetchone()[0])


def test_a_stale_target_a_running_runner_rewrote_before_recording_it_is_not_rewritten(tmp_path):
    """After a version bump, runner A rewrote most targets and still runs (its ledger rows
    not written yet, the version 1 rows still the latest): runner B, started then, takes
    them as done (A rewrote them after it started), not as stale: no function is called
    twice."""
    script = tmp_path / "versioned.py"
    script.write_text(VERSIONED)
    out, hold = tmp_path / "out", tmp_path / "hold"

    def runner(version: str, log: str, *args: str) -> subprocess.Popen[str]:
        command = [sys.executable, str(script), str(out), version, str(tmp_path / log), *args]
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, env=environment(), cwd=tmp_path
        )

    assert finish(runner("1", "first.log"))[0]["ran"] == TASKS
    store = FileStore(str(out))
    first = runner("2", "first.log.2", str(hold))
    try:
        rewritten = lambda: all(  # noqa: E731
            store.exists(f"versioned/{i}.pkl") and store.load(f"versioned/{i}.pkl")[0] == "2"
            for i in range(1, TASKS)
        )
        wait_until(rewritten, "the targets but one rewritten by the first runner")
        assert first.poll() is None
        second = runner("2", "second.log")
        wait_until(lambda: runs(out) == 3, "the second runner's plan (its run in the ledger)")
    finally:
        hold.touch()
    result, _ = finish(second)
    first_result, _ = finish(first)

    second_calls = tmp_path / "second.log"
    assert (second_calls.read_text() if second_calls.exists() else "") == ""  # no call
    assert (result["ran"], result["waited"]) == (0, 1)
    assert result["values"] == [["2", i] for i in range(TASKS)]
    assert first_result["ran"] == TASKS
