"""A run of another host (a shared filesystem) is decided by its heartbeat in the ledger, not
by a look at this host's processes: alive, its pending targets are not orphans (not stale
under ``version=``); killed, they are, once its heartbeat is older than the timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest

import pipex
from pipex.running import ledger, records
from pipex.stores import FileStore
from tests.running.test_staleness import KILLED

ROOT = Path(__file__).resolve().parents[2]
#: runs the script named first with this process's host name changed to "host-b"
ON_HOST_B = (
    "import runpy, socket, sys; socket.gethostname = lambda: 'host-b'; "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def made_here() -> pipex.Node:
    """``KILLED``'s ``made(0)``, built on this host (version 1)."""

    @pipex.task(target="out/made/{i}.pkl", version="1", name="made")
    def made(i: int) -> int:
        return i

    return made(0)


def to_run() -> list[str]:
    return [t.path for t in pipex.status(made_here()).to_run]


@pytest.mark.slow
def test_a_live_run_of_another_host_keeps_its_targets_its_own(workdir):
    (workdir / "killed.py").write_text(KILLED)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_PIPEX__CLAIMS__TIMEOUT": "3s"}
    env.pop("PIPEX", None)
    command = [sys.executable, "-c", ON_HOST_B, "killed.py", "1", "hang"]
    host_b = subprocess.Popen(command, cwd=workdir, env=env)
    file = ledger.location(FileStore(workdir))
    try:
        deadline = time.monotonic() + 120
        while not (workdir / "out" / "made" / "0.pkl").exists():
            assert host_b.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with dask.config.set({"pipex.claims.timeout": "3s"}):
            for _ in range(3):  # across several of its heartbeats
                # written by host B's live run, its outcome not yet in the ledger: B's
                assert to_run() == []
                (run,) = records.runs(file)
                assert run.ended == "running"
                time.sleep(1.5)
    finally:
        host_b.kill()  # SIGKILL: its heartbeat stops
        host_b.wait()

    with dask.config.set({"pipex.claims.timeout": "3s"}):
        deadline = time.monotonic() + 60
        while records.runs(file)[0].ended == "running":
            assert time.monotonic() < deadline, "a run killed on host B still counts as running"
            time.sleep(0.2)
        assert records.runs(file)[0].ended == "killed"
        assert to_run() == ["out/made/0.pkl"]  # written by a killed run: version unknown
