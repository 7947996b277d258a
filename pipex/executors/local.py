"""dask's local schedulers (threads by default, ``sync``, ``processes``)."""

from __future__ import annotations

import contextlib
import pickle
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import BrokenExecutor
from typing import Any

import dask
import dask.local
import dask.threaded
from dask.base import get_scheduler
from dask.callbacks import Callback
from dask.system import CPU_COUNT

from pipex import settings
from pipex.core import fusion
from pipex.core.bundles import bundles
from pipex.core.graph import new_run_id, task_key, to_dask
from pipex.core.outcomes import Outcome
from pipex.core.plan import Plan
from pipex.core.worker import too_deep_to_send
from pipex.exceptions import PipexError
from pipex.executors.base import Executor, Observer
from pipex.executors.batches import ThreadPool

#: Keywords of dask's local schedulers (``dask.threaded.get``, ``dask.multiprocessing.get``,
#: ``dask.local.get_sync``) that pass through :func:`pipex.compute`.
OPTIONS = frozenset(
    {"num_workers", "pool", "cache", "chunksize", "callbacks", "initializer", "optimize_graph"}
)


def claim(scheduler: Any) -> Executor:
    """Every run that no other executor claims."""
    return LocalExecutor(scheduler)


class LocalExecutor(Executor):
    """Runs a plan's dask graph on one of dask's local schedulers."""

    OPTIONS = OPTIONS
    defers_claims = True

    def __init__(self, scheduler: Any = None) -> None:
        self.scheduler = scheduler

    def execute(
        self, plan: Plan, observer: Observer, keep_going: bool, **options: Any
    ) -> dict[str, Outcome]:
        self.check(options)
        run_id = new_run_id()
        fuse = keep_going and settings.get("fuse")
        tasks = bundles(fusion.chains(plan), self._workers(options)) if fuse else None
        chains = tasks or [[node] for node in plan.missing]
        keys = [task_key(chain, run_id) for chain in chains]
        steps = dict(zip(keys, chains, strict=True))
        reporting = Reporting(observer, steps)
        try:
            with reporting:
                dsk = to_dask(plan, keep_going, run_id, chains=tasks)
                results = self._get()(dsk, keys, **options)
        except BrokenExecutor as exc:
            running = ", ".join(sorted(reporting.running)) or "(none had started)"
            raise PipexError(
                f"a worker process of dask's {self.scheduler!r} scheduler died while running "
                f"one of these pipex tasks: {running}. Its target was not written; what "
                "finished before was saved. A task that ends its process (os._exit, a crash "
                "in compiled code, the out-of-memory killer) takes the pool down with it: "
                "rerun to continue, or use the threads scheduler or a dask.distributed "
                "cluster, where such a task is reported as that task's failure."
            ) from exc
        except (pickle.PicklingError, RecursionError) as exc:
            raise too_deep_to_send(exc, reporting.running) or exc from exc
        return {
            node.key: outcome
            for chain, result in zip(chains, results, strict=True)
            for node, outcome, _ in fusion.outcomes(chain, result)
        }

    def pool(self, options: Mapping[str, Any]) -> ThreadPool:
        """dask's threads (its ``pool=`` if given), or the calling thread for ``sync``; other
        local schedulers run batches on threads too."""
        if self._get() is dask.local.get_sync:
            return ThreadPool(0)
        return ThreadPool(self._workers(options), options.get("pool"))

    def _workers(self, options: Mapping[str, Any]) -> int:
        """How many tasks the scheduler runs at once (1 for ``sync``)."""
        if self._get() is dask.local.get_sync:
            return 1
        return int(options.get("num_workers") or dask.config.get("num_workers", None) or CPU_COUNT)

    @contextlib.contextmanager
    def concurrent(self, options: Mapping[str, Any]) -> Iterator[dict[str, Any] | None]:
        """Threads: one pool that every concurrent run shares (else each thread that calls
        dask's threaded scheduler gets a pool of its own); sync: as is; processes: ``None``."""
        get = self._get()
        if get is dask.threaded.get and options.get("pool") is None:
            size = options.get("num_workers") or dask.config.get("num_workers", None)
            pool = dask.threaded.ContextAwareThreadPoolExecutor(size or CPU_COUNT)
            try:
                yield {**options, "pool": pool}
            finally:
                pool.shutdown()
        elif get in (dask.threaded.get, dask.local.get_sync):
            yield dict(options)
        else:
            yield None

    def _get(self) -> Callable[..., Sequence[Any]]:
        """dask's local scheduler of choice (threads by default)."""
        if self.scheduler is None and dask.config.get("scheduler", None) is None:
            return dask.threaded.get
        from pipex.node import Node

        return get_scheduler(scheduler=self.scheduler, cls=Node)


class Reporting(Callback):
    """Reports each pipex task's outcome from dask's local schedulers to an observer.

    ``steps`` maps dask keys to the nodes each task runs (one, or a fused chain's); other
    tasks are not reported. An observer with a ``timing`` method also hears when each node
    started, how long it ran, and which worker ran it.
    """

    def __init__(self, observer: Observer, steps: Mapping[Any, Sequence[Any]]) -> None:
        super().__init__()
        self.observer = observer
        self.steps = steps
        self.timing = getattr(observer, "timing", None)
        self.started: dict[Any, float] = {}  # dask key -> start time of the running tasks
        self.host = socket.gethostname()

    @property
    def running(self) -> list[str]:
        """Node keys of the tasks started and not finished."""
        return [node.key for key in self.started for node in self.steps[key]]

    def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
        if key in self.steps:
            self.started[key] = time.time()

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        nodes = self.steps.get(key)
        if nodes is None:
            return
        started = self.started.pop(key, None)
        where = f"{self.host}/{worker_id}"
        for node, outcome, timing in fusion.outcomes(nodes, result):
            if self.timing is not None and started is not None:
                start, duration = timing or (started, time.time() - started)
                self.timing(node.key, start, duration, where)
            self.observer.record(node.key, outcome)
