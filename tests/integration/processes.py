"""Real clusters on 127.0.0.1 for tests: ``dask scheduler`` and ``dask worker`` processes,
or a ``LocalCluster`` of worker processes; and a bounded wait.

The processes run the ``dask`` command of the running interpreter, with ``PYTHONPATH`` set to
the folder holding the ``pipex`` and ``tests`` packages (so workers import the code under
test), random ports, no dashboards. Every wait is bounded, and the processes (with the worker
processes their nannies start) are stopped when the block exits, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the folder holding the pipex and tests packages


def _dask_command(*args: str) -> list[str]:
    """``dask <args>`` run by this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", "dask", *args]


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, with the code under test importable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "PIPEX"}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([path] if path else [])])
    env.update(extra or {})
    return env


@contextlib.contextmanager
def dask_cluster(
    folder: Path,
    n_workers: int = 2,
    nthreads: int = 1,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    scheduler_env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Start ``dask scheduler`` and ``n_workers`` ``dask worker`` processes; yield the address.

    ``env`` is added to every process's environment (``DASK_...`` settings), then
    ``scheduler_env`` to the scheduler's. Output goes to
    log files in ``folder`` (shown when the cluster does not come up in time).
    """
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    full_env = environment(env)
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start(name: str, *args: str) -> None:
        log = folder / f"{name}.log"
        own = {**full_env, **(scheduler_env or {})} if name == "scheduler" else full_env
        logs.append(log)
        with open(log, "wb") as out:
            processes.append(
                subprocess.Popen(
                    _dask_command(*args),
                    cwd=folder,
                    env=own,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: nanny and worker together
                )
            )

    try:
        start(
            "scheduler",
            "scheduler",
            "--host=127.0.0.1",
            "--port=0",
            "--no-dashboard",
            f"--scheduler-file={scheduler_file}",
        )
        address = _wait_for_address(scheduler_file, processes[0], logs[0], timeout)
        for i in range(n_workers):
            start(
                f"worker-{i}",
                "worker",
                address,
                "--host=127.0.0.1",
                f"--nthreads={nthreads}",
                "--nworkers=1",
                "--no-dashboard",
                "--death-timeout=60",
                f"--name=worker-{i}",
            )
        if n_workers:
            _wait_for_workers(address, n_workers, timeout, logs)
        yield address
    finally:
        _stop(processes)


def _wait_for_address(
    scheduler_file: Path, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dask scheduler exited:\n{log.read_text()}")
        try:
            return str(json.loads(scheduler_file.read_text())["address"])
        except (FileNotFoundError, ValueError, KeyError):
            time.sleep(0.1)
    raise TimeoutError(f"dask scheduler did not start in {timeout} s:\n{log.read_text()}")


def _wait_for_workers(address: str, n: int, timeout: float, logs: list[Path]) -> None:
    from distributed import Client

    with Client(address, set_as_default=False, timeout=timeout) as client:
        try:
            client.wait_for_workers(n, timeout=timeout)
        except TimeoutError as exc:
            shown = "\n".join(f"--- {log.name}\n{log.read_text()}" for log in logs)
            message = f"{n} dask workers did not connect in {timeout} s:\n{shown}"
            raise TimeoutError(message) from exc


def _stop(processes: list[subprocess.Popen[bytes]], grace: float = 15) -> None:
    """SIGTERM each process group (workers first), then SIGKILL whatever is left."""
    for process in reversed(processes):
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in reversed(processes):
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in processes:
        _signal_group(process, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


@contextlib.contextmanager
def local_cluster(n_workers: int, **options: object) -> Iterator[object]:
    """A ``distributed.LocalCluster`` of single-threaded worker processes on 127.0.0.1, in
    pipex's default mode, whose workers import the code under test."""
    import distributed
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", environment()["PYTHONPATH"])
        mp.delenv("PIPEX", raising=False)
        options = {"dashboard_address": ":0", **options}
        with distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            **options,
        ) as cluster:
            yield cluster


def wait_until(condition, timeout=30.0, message="condition not met"):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, message
        time.sleep(0.1)
    return value
