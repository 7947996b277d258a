"""Running pipex graphs on a dask.distributed cluster, and the worker plugins pipex brings.

``pipex.compute`` sends only the missing tasks, as futures, and follows them as they finish:
each task's outcome (its small :class:`Target`, a failure, or not run) is known and counted
as it comes, a task lost with its worker (``KilledWorker``) is reported as that task's failure,
and the client never holds any task's data.

On the client it computes with, pipex registers (once; each can be switched off under
``pipex.distributed.*`` in ``dask.config``) three worker plugins:

- :class:`MemoryRelease`: after tasks finish, ``gc.collect()`` and glibc's ``malloc_trim(0)``
  hand freed memory back to the operating system (at most once per interval).
- :class:`LongRunning`: tasks marked ``@pipex.task(long_running=True)`` run in a process of
  their own on the worker, so a long call that holds the GIL cannot starve the worker's
  heartbeat (the scheduler would take the worker for dead and restart it).
- :class:`LogForwarding`: records of the loggers named in ``pipex.distributed.forward-logs``,
  emitted inside tasks on the workers, reach the same loggers on the client, tagged with the
  pipex task and the file:line they come from.

This module imports ``distributed``; ``import pipex`` never imports it.
"""

from __future__ import annotations

import contextvars
import ctypes
import gc
import logging
import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

import dask.config
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer
from dask.task_spec import Task
from distributed import as_completed
from distributed.diagnostics.plugin import WorkerPlugin

from pipex import config, execution
from pipex.execution import Call, Failure, NotRun, Outcome
from pipex.graph import Plan, run_token, task_key
from pipex.progress import Progress
from pipex.targets import Target
from pipex.task import Node

logger = logging.getLogger("pipex.distributed")

#: Name of the worker executor that runs ``long_running`` tasks (the ``executor`` annotation).
LONG_RUNNING_EXECUTOR = "pipex-long-running"
#: Event topic that workers publish forwarded log records on.
LOG_TOPIC = "pipex-forwarded-log"

_current_task: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pipex_current_task", default=None
)


def setting(name: str) -> Any:
    """The setting ``pipex.distributed.<name>``, falling back to pipex's default."""
    default = config._defaults()["distributed"][name]
    return dask.config.get(f"pipex.distributed.{name}", default=default)


# --- execution -------------------------------------------------------------------------------


def execute(
    plan: Plan, client: Any, keep_going: bool, progress: Progress, **kwargs: Any
) -> dict[str, Outcome]:
    """Run the plan's missing nodes on ``client``'s cluster; the outcome of each, by key.

    Extra keywords go to ``client.get`` (``workers=``, ``resources=``, ``priority=``...).
    """
    register_plugins(client, plan.missing)
    run = run_token()
    nodes = {task_key(node, run): node for node in plan.missing}
    graph = _annotated_graph(plan.graph(keep_going, run), nodes)
    futures = client.get(graph, list(nodes), sync=False, **kwargs)
    return _follow(client, futures, nodes, keep_going, progress)


def run(retrying: bool, call: Call, keep_going: bool, *inputs: Outcome) -> Outcome:
    """What a worker runs for one node: :func:`pipex.execution.run`, known as ``call.key``.

    A task that dask may retry (``retries=N``) raises instead of returning a failure, so that
    dask sees it fail and runs it again; its last failure is reported like any other.
    """
    token = _current_task.set(call.key)
    try:
        return execution.run(call, keep_going and not retrying, *inputs)
    finally:
        _current_task.reset(token)


def _annotations(node: Node) -> dict[str, Any]:
    annotations: dict[str, Any] = {}
    if node.task.retries:
        annotations["retries"] = node.task.retries
    if node.task.long_running and setting("long-running"):
        annotations["executor"] = LONG_RUNNING_EXECUTOR
    return annotations


def _annotated_graph(dsk: Mapping[Any, Any], nodes: Mapping[Any, Node]) -> Any:
    """``dsk`` with each task run by :func:`run`, in one graph layer per set of annotations."""
    groups: dict[tuple[tuple[str, Any], ...], dict[Any, Any]] = {}
    for key, value in dsk.items():
        node = nodes.get(key)
        annotations = _annotations(node) if node is not None else {}
        if isinstance(value, Task) and value.func is execution.run:
            value = Task(key, run, "retries" in annotations, *value.args, **value.kwargs)
        groups.setdefault(tuple(sorted(annotations.items())), {})[key] = value
    if list(groups) == [()]:
        return groups[()]
    layers = {
        f"pipex-{i}": MaterializedLayer(part, annotations=dict(group) or None)
        for i, (group, part) in enumerate(groups.items())
    }
    return HighLevelGraph(layers, {name: set() for name in layers})


def _follow(
    client: Any,
    futures: list[Any],
    nodes: Mapping[Any, Node],
    keep_going: bool,
    progress: Progress,
) -> dict[str, Outcome]:
    """Collect each task's outcome as it finishes, feeding the progress bar."""
    by_key = {node.key: node for node in nodes.values()}
    erred: dict[str, tuple[BaseException, str]] = {}
    outcomes: dict[str, Outcome] = {}
    pending = {future.key: future for future in futures}
    try:
        for batch in as_completed(futures, loop=client.loop).batches():
            finished = [f for f in batch if f.status == "finished"]
            # A task that wrote its target returns that Target, which the client already
            # has: the type the scheduler reported says so, and nothing is fetched. Only
            # failure records (and anything the type does not tell) are gathered.
            fetch = [f for f in finished if f.type is not Target]
            results = dict(zip(fetch, client.gather(fetch) if fetch else [], strict=True))
            for future in finished:
                node = nodes[future.key]
                outcome = results.get(future, node.target)
                outcomes[node.key] = outcome
                progress.advance(outcome)
            for future in batch:
                if future.status == "finished":
                    continue
                node = nodes[future.key]
                if not keep_going:
                    future.result()  # raises the task's exception
                    raise RuntimeError(f"pipex task {node.key}: {future.status}")
                erred[node.key] = _error_of(future, node)
                progress.advance(_blame(node, erred, {}))
            for future in batch:
                pending.pop(future.key, None)
                future.release()
    except BaseException:
        if pending:
            client.cancel(list(pending.values()))
        raise
    memo: dict[str, Failure | NotRun] = {}
    for key in erred:
        outcomes[key] = _blame(by_key[key], erred, memo)
    return outcomes


def _error_of(future: Any, node: Node) -> tuple[BaseException, str]:
    """The exception of a task that failed on the cluster, and its traceback as text."""
    if future.status == "cancelled":
        exc: BaseException = RuntimeError(
            f"pipex task {node.key} was cancelled on the cluster before it finished"
        )
        return exc, f"{type(exc).__name__}: {exc}\n"
    exc = future.exception()
    tb = future.traceback()
    notes = getattr(exc, "__notes__", None)
    if notes:  # execution.run's note for a raised failure; the report adds its own
        notes[:] = [n for n in notes if not n.startswith(f"pipex task {node.key} failed;")]
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return exc.with_traceback(None), text


def _blame(
    node: Node,
    erred: Mapping[str, tuple[BaseException, str]],
    memo: dict[str, Failure | NotRun],
) -> Failure | NotRun:
    """A task that erred on the cluster: its own failure, or not run when an input erred.

    dask marks every dependant of a failed task as failed with the same exception; pipex
    reports only the task that failed, and its dependants as not run.
    """
    if node.key in memo:
        return memo[node.key]
    causes: set[str] = set()
    for dep in node.deps:
        if dep.key in erred:
            below = _blame(dep, erred, memo)
            causes.update(below.causes if isinstance(below, NotRun) else {dep.key})
    if causes:
        outcome: Failure | NotRun = NotRun(node.key, node.target, frozenset(causes))
    else:
        exc, text = erred[node.key]
        outcome = Failure(node.key, node.target, exc, text)
    memo[node.key] = outcome
    return outcome


# --- plugins ---------------------------------------------------------------------------------


def register_plugins(client: Any, nodes: Iterable[Node] = ()) -> None:
    """Register pipex's worker plugins on ``client``'s cluster, as configured.

    Registration is idempotent (by plugin name): a cluster keeps the first registration of
    each plugin, with the settings it had then. The long-running executor is registered only
    when some node needs it.
    """
    if setting("memory-release"):
        client.register_plugin(MemoryRelease(_seconds(setting("memory-release-interval"))))
    if setting("long-running") and any(node.task.long_running for node in nodes):
        client.register_plugin(LongRunning(trim=bool(setting("memory-release"))))
    names = _forwarded_loggers()
    if names:
        client.subscribe_topic(LOG_TOPIC, _on_forwarded_record)
        level = _level(setting("forward-logs-level"))
        for name in names:
            client.register_plugin(LogForwarding(name, level), f"pipex-forward-logs-{name}")


class MemoryRelease(WorkerPlugin):
    """After tasks finish, release freed memory to the OS: ``gc.collect()`` + ``malloc_trim(0)``.

    glibc keeps memory freed by many small allocations (in thread arenas, or below a live
    allocation) mapped into the process; ``malloc_trim(0)`` returns it. At most once per
    ``interval`` seconds: a task finishing sooner after the last release schedules one at the
    end of the interval. Without glibc only ``gc.collect()`` runs.
    """

    name = "pipex-memory-release"
    idempotent = True

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last = 0.0
        self._timer: Any = None
        self._worker: Any = None

    def setup(self, worker: Any) -> None:
        self._worker = worker

    def teardown(self, worker: Any) -> None:
        if self._timer is not None:
            worker.loop.remove_timeout(self._timer)
            self._timer = None

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if start in ("executing", "long-running") and self._timer is None:
            wait = self._last + self.interval - time.monotonic()
            if wait <= 0:
                self._release()
            else:
                self._timer = self._worker.loop.call_later(wait, self._release)

    def _release(self) -> None:
        self._timer = None
        release_memory()
        self._last = time.monotonic()


def release_memory() -> bool:
    """``gc.collect()``, then glibc's ``malloc_trim(0)``; whether memory could be trimmed."""
    gc.collect()
    trim = _malloc_trim()
    return bool(trim is not None and trim(0))


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return None


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
        self.records.append(_attributes(record, self))


def _logger_levels() -> dict[str, int]:
    """The levels set on this process's loggers ("" for the root), for a child to copy."""
    levels = {"": logging.getLogger().level}
    for name, item in logging.Logger.manager.loggerDict.items():
        if isinstance(item, logging.Logger) and item.level != logging.NOTSET:
            levels[name] = item.level
    return levels


class LogForwarding(WorkerPlugin):
    """Publish the records of one logger (and those below it), emitted on the worker.

    Each record is tagged with the pipex task that emitted it; the client hands it to its own
    logger of the same name (see :func:`register_plugins`). Where the worker's logger would
    drop records of ``level``, the plugin lowers its level to ``level`` while registered.
    """

    idempotent = True

    def __init__(self, logger_name: str, level: int = logging.INFO) -> None:
        self.logger_name = logger_name
        self.level = level
        self._handler: _Publish | None = None
        self._old_level: int | None = None

    def setup(self, worker: Any) -> None:
        target = logging.getLogger(self.logger_name)
        self._handler = _Publish(worker, self.level)
        target.addHandler(self._handler)
        if target.getEffectiveLevel() > self.level:
            self._old_level = target.level
            target.setLevel(self.level)

    def teardown(self, worker: Any) -> None:
        target = logging.getLogger(self.logger_name)
        if self._handler is not None:
            target.removeHandler(self._handler)
        if self._old_level is not None:
            target.setLevel(self._old_level)


class _Publish(logging.Handler):
    def __init__(self, worker: Any, level: int) -> None:
        super().__init__(level)
        self.worker = worker

    def emit(self, record: logging.LogRecord) -> None:
        try:
            attributes = _attributes(record, self)
            attributes["worker"] = self.worker.address
            self.worker.log_event(LOG_TOPIC, attributes)
        except Exception:
            self.handleError(record)


def _attributes(record: logging.LogRecord, handler: logging.Handler) -> dict[str, Any]:
    """A record as plain values (message formatted, traceback as text), tagged with its task."""
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    attributes = dict(record.__dict__)
    attributes["msg"] = record.getMessage()
    attributes["args"] = None
    attributes["exc_info"] = None
    attributes.pop("message", None)
    if attributes.get("pipex_task") is None:
        attributes["pipex_task"] = current_task()
    return {k: v for k, v in attributes.items() if _plain(v)}


def _plain(value: Any) -> bool:
    return value is None or type(value) in (str, int, float, bool)


def current_task() -> str | None:
    """The pipex task (``node.key``) running in this thread; else the dask key, if any."""
    name = _current_task.get()
    if name is not None:
        return name
    try:
        from distributed.worker import thread_state
    except ImportError:
        return None
    key = getattr(thread_state, "key", None)
    return None if key is None else str(key)


def _on_forwarded_record(event: tuple[float, dict[str, Any]]) -> None:
    """On the client: emit a worker's record on the same-named logger, if still forwarded."""
    _, attributes = event
    name = attributes.get("name") or ""
    if not any(name == n or name.startswith(n + ".") for n in _forwarded_loggers()):
        return
    record = logging.makeLogRecord(attributes)
    task = attributes.get("pipex_task")
    where = f"{record.filename}:{record.lineno}"
    record.msg = f"[{task} {where}] {record.msg}" if task else f"[{where}] {record.msg}"
    logging.getLogger(name).handle(record)


def _forwarded_loggers() -> list[str]:
    names = setting("forward-logs") or []
    if isinstance(names, str):
        names = [names]
    return [str(n) for n in names]


def _level(value: Any) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelName(str(value).upper())
    if not isinstance(level, int):
        raise ValueError(
            f"pipex.distributed.forward-logs-level: {value!r} is not a logging level "
            "(use DEBUG, INFO, WARNING, ERROR or a number)"
        )
    return level


def _seconds(value: Any) -> float:
    from dask.utils import parse_timedelta

    return float(parse_timedelta(value, default="seconds"))
