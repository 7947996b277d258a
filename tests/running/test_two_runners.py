"""Two runners on one store: real processes on one folder run each task once; a killed
runner's claims are taken over; a live claim is waited for, and its target not recomputed."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import dask
import pytest

import pipex
from tests.integration.processes import environment

CHAINS = 30

#: A pipeline of CHAINS chains ``first -> second`` under argv[1]; each call appends its
#: name to argv[2] (O_APPEND); with argv[3] set, ``first(0)`` waits for that file to exist.
#: It prints "ready" and starts when the file "go" exists beside argv[2].
SCRIPT = textwrap.dedent(
    f"""
    import json, os, sys, time
    import pipex

    root, log = sys.argv[1], sys.argv[2]
    hold = sys.argv[3] if len(sys.argv) > 3 else None

    def record(name):
        descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(descriptor, (name + "\\n").encode())
        os.close(descriptor)

    @pipex.task(target="{{path}}/first/{{i}}.pkl")
    def first(i):
        record(f"first {{i}}")
        while hold and i == 0 and not os.path.exists(hold):
            time.sleep(0.02)
        time.sleep(0.01)
        return i

    @pipex.task(target="{{path}}/second/{{i}}.pkl")
    def second(x, i):
        record(f"second {{i}}")
        time.sleep(0.01)
        return x * 10

    print("ready", flush=True)
    go = os.path.join(os.path.dirname(log), "go")
    while not os.path.exists(go):
        time.sleep(0.01)
    with pipex.context(path=root):
        nodes = [second(first(i), i) for i in range({CHAINS})]
    results = pipex.compute(nodes, load=True, progress=False, scheduler="threads")
    summary = results.summary
    print(json.dumps({{"ran": summary.ran, "waited": summary.waited, "values": results[0]}}))
    """
)


@pytest.fixture
def runner(tmp_path):
    """Start the pipeline script in a new process: ``runner(*args, env=...)`` -> Popen."""
    script = tmp_path / "pipeline.py"
    script.write_text(SCRIPT)
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        command = [sys.executable, str(script), str(tmp_path / "out"), str(tmp_path / "calls.log")]
        process = subprocess.Popen(
            [*command, *args],
            stdout=subprocess.PIPE,
            text=True,
            env=environment(env),
            cwd=tmp_path,
        )
        started.append(process)
        assert process.stdout.readline().strip() == "ready"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def finish(process: subprocess.Popen[str]) -> dict:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return json.loads(out.strip().splitlines()[-1])


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls.log").read_text().splitlines()


EVERY_CALL = sorted(f"{step} {i}" for step in ("first", "second") for i in range(CHAINS))
VALUES = [i * 10 for i in range(CHAINS)]


def test_two_runners_started_together_run_each_task_once(runner, tmp_path):
    a, b = runner(), runner()
    (tmp_path / "go").touch()
    results = [finish(a), finish(b)]

    assert sorted(calls(tmp_path)) == EVERY_CALL  # each task ran once, in one of the two
    assert sum(r["ran"] for r in results) == 2 * CHAINS
    assert [r["values"] for r in results] == [VALUES, VALUES]
    assert sorted(p.name for p in (tmp_path / "out" / "first").iterdir()) == sorted(
        f"{i}.pkl" for i in range(CHAINS)
    )  # no claim left behind


def test_the_claims_of_a_killed_runner_are_taken_over(runner, tmp_path):
    hold = tmp_path / "never"
    killed = runner(str(hold))
    (tmp_path / "go").touch()
    _wait_for_line(tmp_path, "first 0")
    claim = tmp_path / "out" / "first" / ".0.pkl.pipex-claim"
    assert claim.exists()
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert claim.exists()  # a killed runner leaves its claim

    result = finish(runner(env={"DASK_PIPEX__CLAIMS__TIMEOUT": "2s"}))

    assert result["values"] == VALUES
    assert calls(tmp_path).count("first 0") == 2  # started by the killed one, then taken over
    assert not claim.exists()


def test_a_live_claim_is_waited_for_and_its_target_not_recomputed(runner, tmp_path, caplog):
    hold = tmp_path / "hold"
    holder = runner(str(hold))
    (tmp_path / "go").touch()
    _wait_for_line(tmp_path, "first 0")
    waiting = threading.Event()
    caplog.set_level(logging.DEBUG, logger="pipex.stores.claims")
    handler = _Signal(waiting, "first/0.pkl is claimed by")
    logging.getLogger("pipex.stores.claims").addHandler(handler)
    here: list[int] = []

    @pipex.task(target="{path}/first/{i}.pkl")
    def first(i):
        here.append(i)
        return -1  # never stored: the other runner writes this target

    outcome: list = []
    with pipex.context(path=str(tmp_path / "out")):
        node = first(0)
    thread = threading.Thread(
        target=lambda: outcome.append(pipex.compute(node, scheduler="sync", progress=False))
    )
    try:
        thread.start()
        assert waiting.wait(120), "the second runner never waited for the claim"
        hold.touch()  # the holder finishes first(0)
        thread.join(120)
    finally:
        logging.getLogger("pipex.stores.claims").removeHandler(handler)
        hold.touch()
    assert finish(holder)["values"] == VALUES
    assert here == []  # waited for: its function was called 0 times
    (result,) = outcome
    assert result.summary.ran == 0 and result.summary.waited == 1
    assert result[0] == node.target and result[0].load() == 0  # the holder's output


class _Signal(logging.Handler):
    def __init__(self, event: threading.Event, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.event, self.text = event, text

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def _wait_for_line(tmp_path: Path, line: str, timeout: float = 120) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        log = tmp_path / "calls.log"
        if log.exists() and line in log.read_text().splitlines():
            return
        done.wait(0.02)
    raise AssertionError(f"no call {line!r} within {timeout} s")


def test_a_target_found_written_with_no_other_runner_is_not_counted_as_waited(tmp_path):
    """As after a worker killed once it had written its target: the task's retry finds it
    written, by no other runner."""
    calls: list[str] = []

    @pipex.task(target="{path}/after/{i}.pkl")
    def after(x, i):
        calls.append("after")
        return x

    @pipex.task(target="{path}/before/{i}.pkl")
    def before(i):
        calls.append("before")
        after_node.target.store.save(after_node.target.path, "an earlier attempt's")
        return i

    with pipex.context(path=str(tmp_path / "out")):
        after_node = after(before(0), 0)
    results = pipex.compute(after_node, scheduler="sync", progress=False)

    assert calls == ["before"]
    assert (results.summary.waited, results.summary.found) == (0, 1)
    assert "written by another runner" not in str(results.summary)
    assert results[0].load() == "an earlier attempt's"


@pytest.mark.parametrize("name", ["page.pipex-tmp.pkl", ".page.pkl.pipex-claim"])
def test_a_target_named_as_a_temporary_or_a_claim_is_refused_before_running(tmp_path, name):
    calls: list[int] = []

    @pipex.task(target="{path}/step/{name}", save=False)
    def step(name, target):
        calls.append(1)
        Path(target).write_text("1")

    with pytest.raises(pipex.TargetError) as info:
        with pipex.context(path=str(tmp_path / "out")):
            node = step(name)
        pipex.compute(node, scheduler="sync", progress=False)
    assert "step" in str(info.value) and name in str(info.value)
    assert calls == []
    assert not (tmp_path / "out").exists()


#: One task that holds the GIL in a C loop (``sum`` over a range never lets another thread
#: run, the claims' heartbeat included) after appending "busy" to argv[2].
BUSY = textwrap.dedent(
    """
    import os, sys
    import pipex

    @pipex.task(target="{path}/busy/{i}.pkl")
    def busy(i):
        descriptor = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(descriptor, b"busy\\n")
        os.close(descriptor)
        return sum(range(10**8))  # seconds without releasing the GIL

    with pipex.context(path=sys.argv[1]):
        node = busy(0)
    pipex.compute(node, progress=False, scheduler="sync")
    """
)


def test_a_task_holding_the_gil_past_the_timeout_is_waited_for_not_run_twice(tmp_path):
    log = tmp_path / "calls.log"
    env = environment({"DASK_PIPEX__CLAIMS__TIMEOUT": "0.5s"})
    holder = subprocess.Popen(
        [sys.executable, "-c", BUSY, str(tmp_path / "out"), str(log)], env=env, cwd=tmp_path
    )
    here: list[int] = []

    @pipex.task(target="{path}/busy/{i}.pkl")
    def busy(i):
        here.append(i)
        return -1

    try:
        _wait_for_line(tmp_path, "busy")
        with (
            pipex.context(path=str(tmp_path / "out")),
            dask.config.set({"pipex.claims.timeout": "0.5s"}),
        ):
            result = pipex.compute(busy(0), scheduler="sync", progress=False)
        assert holder.wait(120) == 0
    finally:
        holder.kill()
        holder.wait()
    assert here == []  # its heartbeat stopped, but its process ran: waited for, not taken over
    assert result.summary.waited == 1
    assert result[0].load() == sum(range(10**8))
