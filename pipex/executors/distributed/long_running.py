"""Worker plugin :class:`LongRunning`: ``long_running`` tasks in processes of the worker's own.

A long call that holds the GIL in such a process cannot starve the worker's event loop, so
its heartbeat keeps reaching the scheduler.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from pipex.executors.distributed.logs import record_attributes
from pipex.executors.distributed.memory import release_memory

logger = logging.getLogger("pipex.distributed")

#: Name of the worker executor that runs ``long_running`` tasks (the ``executor`` annotation).
LONG_RUNNING_EXECUTOR = "pipex-long-running"


class LongRunning(WorkerPlugin):
    """Run ``long_running`` pipex tasks in a pool of processes of the worker's own.

    The worker's event loop (and so its heartbeat to the scheduler) keeps running while such
    a task holds the GIL in a long C call. The pool has one process per worker thread, started
    with ``spawn`` on first use; log records emitted in it are replayed in the worker (where
    :class:`LogForwarding` sees them). Worker processes must be allowed children: start them
    with ``distributed.worker.daemon: False`` (or ``dask worker --no-nanny``).
    """

    name = "pipex-long-running"
    idempotent = True

    def __init__(self, trim: bool = True) -> None:
        self.trim = trim

    def setup(self, worker: Any) -> None:
        worker.executors[LONG_RUNNING_EXECUTOR] = ChildProcessExecutor(
            worker.state.nthreads, trim=self.trim
        )
        if multiprocessing.current_process().daemon:
            logger.warning("%s", _DAEMON_MESSAGE)

    def teardown(self, worker: Any) -> None:
        executor = worker.executors.pop(LONG_RUNNING_EXECUTOR, None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


_DAEMON_MESSAGE = (
    "pipex long_running tasks run in child processes of the worker, but this worker runs "
    "in a daemonic process, which may not start any. Start the workers with "
    "distributed.worker.daemon: False (DASK_DISTRIBUTED__WORKER__DAEMON=False in their "
    "environment, or dask.config.set before creating a LocalCluster), or with "
    "`dask worker --no-nanny`; or set pipex.distributed.long-running: false to run those "
    "tasks in the worker's threads."
)


class ChildProcessExecutor(Executor):
    """A ``spawn`` process pool that replays its children's log records in this process."""

    def __init__(self, max_workers: int, trim: bool = True) -> None:
        self.max_workers = max_workers
        self.trim = trim
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _current_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None or getattr(self._pool, "_broken", False):
                if multiprocessing.current_process().daemon:
                    raise RuntimeError(_DAEMON_MESSAGE)
                self._pool = ProcessPoolExecutor(
                    self.max_workers,
                    mp_context=multiprocessing.get_context("spawn"),
                )
            return self._pool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        pool = self._current_pool()
        future = pool.submit(_in_child, self.trim, _logger_levels(), fn, args, kwargs)
        # Runs before the worker's own callback: records are forwarded before the result.
        future.add_done_callback(_replay_records)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        # The worker is going away: a long task's result could not be delivered anyway, and
        # must not hold up the worker's exit. (ProcessPoolExecutor.terminate_workers: 3.14+.)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=wait, cancel_futures=cancel_futures)


_RECORDS = "pipex-log-records"


def _in_child(
    trim: bool,
    levels: dict[str, int],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """In a pool process: run ``fn`` with the worker's logger levels, capturing its records."""
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    capture = _Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        result = fn(*args, **kwargs)
    finally:
        root.removeHandler(capture)
        if trim:
            release_memory()
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
