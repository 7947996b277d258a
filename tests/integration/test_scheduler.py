"""What the scheduler needs and what happens when it goes: real ``dask scheduler`` and
``dask worker`` processes on 127.0.0.1."""

from __future__ import annotations

import importlib
import os
import signal
import textwrap
import threading

import pytest

import pipex
from tests import pipelines
from tests.integration.processes import ROOT, dask_cluster, wait_until

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow

TASKS = """
import pipex


@pipex.task(target="{path}/blind/{name}.pkl")
def shout(name):
    return name.upper()


@pipex.task(target="{path}/blind-after/{item.stem}.pkl")
def exclaim(item):
    return item + "!"
"""


def test_the_scheduler_needs_neither_pipex_nor_the_task_code(tmp_path, monkeypatch):
    code = tmp_path / "code"  # the task module: on the client and the workers only
    code.mkdir()
    (code / "scheduler_blind.py").write_text(textwrap.dedent(TASKS))
    blocked = tmp_path / "blocked" / "pipex"  # on the scheduler, `import pipex` fails
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('pipex is not installed here')\n")
    monkeypatch.syspath_prepend(str(code))
    tasks = importlib.import_module("scheduler_blind")
    with pipex.context(path=str(tmp_path / "out")):
        done = tasks.shout("done")
    pipex.compute(done, progress=False)  # a done input is sent to the worker as a Target
    with pipex.context(path=str(tmp_path / "out")):
        roots = [tasks.exclaim(tasks.shout(name)) for name in ("a", "b")]
        roots.append(tasks.exclaim(done))

    with (
        dask_cluster(
            tmp_path / "cluster",
            env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(code)])},
            scheduler_env={"PYTHONPATH": os.pathsep.join([str(blocked.parent), str(ROOT)])},
        ) as address,
        distributed.Client(address, set_as_default=False) as client,
    ):
        for module in ("pipex", "scheduler_blind"):
            with pytest.raises(ImportError):
                client.run_on_scheduler(lambda m=module: __import__("importlib").import_module(m))
        pipex.compute(roots, scheduler=client, progress=False)

    assert [root.target.load() for root in roots] == ["A!", "B!", "DONE!"]


def test_a_scheduler_gone_mid_run_is_said_once_with_what_was_saved(tmp_path):
    log = str(tmp_path / "calls.log")
    with pipex.context(path=str(tmp_path / "out")):
        quick = pipelines.chains(["quick"], log)
        slow = [pipelines.long_call_unmarked(f"slow-{i}", 30, log) for i in range(4)]
    errors: list[BaseException] = []
    with (
        dask_cluster(tmp_path / "cluster") as address,
        distributed.Client(address, set_as_default=False) as client,
    ):
        pipex.compute(quick, scheduler=client, progress=False)
        (scheduler_pid,) = [client.run_on_scheduler(os.getpid)]

        def run() -> None:
            try:
                pipex.compute(quick, slow, scheduler=client, progress=False)
            except BaseException as exc:
                errors.append(exc)

        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        wait_until(lambda: any(t == "long_call_unmarked" for t, _, _ in pipelines.calls(log)))
        os.kill(scheduler_pid, signal.SIGKILL)
        runner.join(120)
        assert not runner.is_alive(), "pipex.compute did not return after the scheduler died"

    (error,) = errors
    text = str(error)
    assert isinstance(error, pipex.PipexError), repr(error)
    assert address in text and "scheduler" in text
    assert "rerun" in text
    assert text.count("cancelled") <= 1, text
