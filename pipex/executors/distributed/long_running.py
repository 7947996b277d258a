"""Worker plugin :class:`LongRunning`: each ``long_running`` task in a process of its own.

A long call that holds the GIL in such a process cannot starve the worker's event loop, so
its heartbeat keeps reaching the scheduler. The process is a fresh interpreter started with
:mod:`subprocess` (which daemonic worker processes, the default under a nanny, may start,
unlike :mod:`multiprocessing` children); it dies with its worker.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import cloudpickle
from distributed.diagnostics.plugin import WorkerPlugin

from pipex.executors.distributed.logs import record_attributes

logger = logging.getLogger("pipex.distributed")

#: Name of the worker executor that runs ``long_running`` tasks (the ``executor`` annotation).
LONG_RUNNING_EXECUTOR = "pipex-long-running"

#: The module a task's process runs (``python -m ...``).
CHILD_MODULE = "pipex.executors.distributed.child"


class LongRunning(WorkerPlugin):
    """Run ``long_running`` pipex tasks each in a process of its own, started by the worker.

    The worker's event loop (and so its heartbeat to the scheduler) keeps running while such
    a task holds the GIL in a long C call. At most one such process per worker thread runs at
    a time; log records emitted in it are replayed in the worker (where
    :class:`LogForwarding` sees them). Works on any worker, daemonic (nanny) or not.
    """

    name = "pipex-long-running"
    idempotent = True

    def setup(self, worker: Any) -> None:
        worker.executors[LONG_RUNNING_EXECUTOR] = ChildProcessExecutor(worker.state.nthreads)

    def teardown(self, worker: Any) -> None:
        executor = worker.executors.pop(LONG_RUNNING_EXECUTOR, None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


class ChildProcessExecutor(Executor):
    """Runs each submitted call in a new Python process; ``max_workers`` at a time."""

    def __init__(self, max_workers: int) -> None:
        self._threads = ThreadPoolExecutor(max_workers, thread_name_prefix="pipex-long-running")
        self._children: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = self._threads.submit(self._run, fn, args, kwargs)
        # Runs before the worker's own callback: records are forwarded before the result.
        future.add_done_callback(_replay_records)
        return future

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Start a child, hand it the call, wait for its answer (the GIL is free meanwhile)."""
        payload = pickle.dumps(sys.path) + cloudpickle.dumps((_logger_levels(), fn, args, kwargs))
        child = subprocess.Popen(
            [sys.executable, "-m", CHILD_MODULE, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        with self._lock:
            self._children.add(child)
        try:
            answer, _ = child.communicate(payload)
        finally:
            with self._lock:
                self._children.discard(child)
        if child.returncode != 0 or not answer:
            raise RuntimeError(
                f"the process running this long_running pipex task ended with exit code "
                f"{child.returncode} before returning (killed, out of memory, or a crash in "
                "compiled code); its target was not written. Rerun to try again."
            )
        ok, value = pickle.loads(answer)
        if not ok:
            raise value
        return value

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        # The worker is going away: a long task's result could not be delivered anyway, and
        # must not hold up the worker's exit.
        with self._lock:
            children = list(self._children)
        for child in children:
            child.kill()
        self._threads.shutdown(wait=wait, cancel_futures=cancel_futures)


_RECORDS = "pipex-log-records"


def run_in_child(
    levels: dict[str, int],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """In the task's process: run ``fn`` with the worker's logger levels, capturing records."""
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    capture = _Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        result = fn(*args, **kwargs)
    finally:
        root.removeHandler(capture)
    if isinstance(result, dict):
        result[_RECORDS] = capture.records
    return result


def _replay_records(future: Future[Any]) -> None:
    """In the worker: hand a child's records to the worker's loggers, as if emitted here."""
    if future.cancelled() or future.exception() is not None:
        return
    result = future.result()
    records = result.pop(_RECORDS, ()) if isinstance(result, dict) else ()
    for attributes in records:
        record = logging.makeLogRecord(attributes)
        logging.getLogger(record.name).handle(record)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record_attributes(record, self))


def _logger_levels() -> dict[str, int]:
    """The levels set on this process's loggers ("" for the root), for a child to copy."""
    levels = {"": logging.getLogger().level}
    for name, item in logging.Logger.manager.loggerDict.items():
        if isinstance(item, logging.Logger) and item.level != logging.NOTSET:
            levels[name] = item.level
    return levels
