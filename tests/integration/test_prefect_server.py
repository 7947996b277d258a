"""``PIPEX=prefect+cache`` on the set-up a user gets: a flow script run as a real process, with
Prefect's temporary server (no ``PREFECT_API_URL``), the default ``DaskTaskRunner`` and a
``PREFECT_HOME`` of each test's own. What the server kept is read back from its database
(SQLite, in ``PREFECT_HOME``) once it has stopped.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.test_modes import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("prefect") is None
        or importlib.util.find_spec("prefect_dask") is None,
        reason="needs the prefect extra",
    ),
]

SCRIPT = Path(__file__).with_name("prefect_flow_script.py")
psutil = pytest.importorskip("psutil")


def environment(home: Path, **extra: str) -> dict[str, str]:
    """This environment without a Prefect API or home of its own, PIPEX=prefect+cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PIPEX"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(
        PIPEX="prefect+cache",
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="150",
        **extra,
    )
    return env


def start(folder: Path, home: Path, n: int, **extra: str) -> subprocess.Popen[str]:
    folder.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(n)],
        cwd=folder,
        env=environment(home, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out, err


def database(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "prefect.db")


def flow_runs(home: Path) -> list[tuple[str, str]]:
    """(id, state name) of each flow run the server kept, oldest first."""
    with database(home) as db:
        return db.execute("SELECT id, state_name FROM flow_run ORDER BY created").fetchall()


def task_run_states(home: Path, flow_run: str) -> dict[str, int]:
    """How many task runs of ``flow_run`` the server kept, by state name."""
    with database(home) as db:
        rows = db.execute(
            "SELECT state_name, count(*) FROM task_run WHERE flow_run_id = ? GROUP BY state_name",
            (flow_run,),
        ).fetchall()
    return dict(rows)


def written(folder: Path) -> int:
    return sum(1 for _ in (folder / "out").rglob("*.pkl"))


def server_of(proc: subprocess.Popen[str], timeout: float = 300) -> Any:
    """The flow process's temporary server process, once it answers (its child running
    uvicorn)."""
    deadline = time.monotonic() + timeout
    parent = psutil.Process(proc.pid)
    while True:
        for child in parent.children(recursive=True):
            try:
                if "prefect.server.api.server:create_app" in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no temporary server started"
        time.sleep(0.2)


def kill_once_written(proc: subprocess.Popen[str], folder: Path, count: int) -> None:
    """SIGKILL the flow process once ``count`` targets are written."""
    deadline = time.monotonic() + 600
    while written(folder) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{written(folder)} targets written"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_every_task_run_is_recorded_with_its_final_state_before_the_server_stops(tmp_path):
    home, folder = tmp_path / "home", tmp_path / "run"

    out, err = finish(start(folder, home, 150))  # 300 task runs

    assert "computed 150" in out
    assert written(folder) == 300
    ((flow_run, state),) = flow_runs(home)
    assert state == "Completed"
    assert task_run_states(home, flow_run) == {"Completed": 300}
    assert "Error flushing" not in err  # nothing was lost, nor hidden
    assert not re.search(r"\| (ERROR|CRITICAL) ", err), err


def test_graph_batches_run_ahead_and_every_batch_s_task_run_is_recorded(tmp_path):
    home, folder = tmp_path / "home", tmp_path / "run"
    graph = {"DASK_PIPEX__PREFECT__GRANULARITY": "graph", "DASK_PIPEX__BATCH_SIZE": "2"}

    out, err = finish(start(folder, home, 2, GATE="60", **graph))  # a chain per batch

    assert "computed 2" in out
    assert written(folder) == 4
    # chain 0's second step, in the first batch, saw chain 1's start on the cluster: the
    # second batch was sent while the first ran (one after the other, it waits in vain)
    assert (folder / "marks" / "0-saw-1").exists()
    assert not (folder / "marks" / "0-missed-1").exists()
    ((flow_run, state),) = flow_runs(home)
    assert state == "Completed"
    with database(home) as db:
        runs = db.execute(
            "SELECT name, state_name FROM task_run WHERE flow_run_id = ? ORDER BY name",
            (flow_run,),
        ).fetchall()
    assert runs == [("first..second [0:2]", "Completed"), ("first..second [2:4]", "Completed")]
    assert not re.search(r"\| (ERROR|CRITICAL) ", err), err


def test_the_temporary_server_ends_when_the_flow_process_is_killed(tmp_path):
    home, folder = tmp_path / "home", tmp_path / "run"
    proc = start(folder, home, 40, PAUSE="0.5")
    server = server_of(proc)

    kill_once_written(proc, folder, 10)

    try:
        server.wait(timeout=30)  # it ends with the flow process: no orphan
    except psutil.TimeoutExpired:
        server.kill()
        pytest.fail("the temporary server outlived its flow process killed with SIGKILL")


@pytest.mark.timeout(900)  # two flow runs, each starting a server and a cluster
def test_the_next_run_of_a_flow_marks_a_run_whose_process_was_killed_crashed(tmp_path):
    home, folder = tmp_path / "home", tmp_path / "run"
    proc = start(folder, home, 40, PAUSE="0.5")
    kill_once_written(proc, folder, 10)
    ((killed, state),) = flow_runs(home)
    assert state == "Running"  # what the killed process left

    finish(start(folder, home, 40))

    (first, state), (_, again) = flow_runs(home)
    assert (first, state, again) == (killed, "Crashed", "Completed")
    assert "Running" not in task_run_states(home, killed)


def test_pipex_log_counts_what_a_killed_node_mode_run_wrote(tmp_path):
    home, folder = tmp_path / "home", tmp_path / "run"
    proc = start(folder, home, 40, PAUSE="0.5")
    kill_once_written(proc, folder, 10)
    time.sleep(1)  # no worker is writing now: the flow process and its cluster are gone
    count = written(folder)

    log = subprocess.run(
        [sys.executable, "-c", "from pipex.cli import main; main()", "log"],
        cwd=folder,
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert log.returncode == 0, log.stderr
    (row,) = [line for line in log.stdout.splitlines() if "killed" in line]
    assert row.split()[-3:] == [str(count), "0", "0"], log.stdout
