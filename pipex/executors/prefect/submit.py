"""Submitting task runs to a ``DaskTaskRunner`` the way prefect-dask does, but cheaper.

This is the one module that leans on prefect-dask and Prefect internals (the same code on
prefect 3.8.0 with prefect-dask 0.3.6 and on prefect 3.9.1 with prefect-dask 0.3.7, the lowest
and newest tested; ``SUPPORTED`` lists the versions): ``prefect.task_engine.run_task_sync``
(with a serialized context), ``prefect.context.serialize_context``, ``SettingsContext`` and
``SyncClientContext``, ``prefect.utilities.engine.collect_task_run_inputs_sync``, and
``prefect_dask.task_runners.PrefectDaskFuture`` wrapping a ``distributed.Future`` — what
``DaskTaskRunner.submit`` itself does. If any of them is missing (another Prefect version),
task runs are submitted with ``task.submit`` instead: slower, same result.

Where a task run's time goes with prefect-dask's own ``submit`` (docs/benchmarks.md): the
flow process serializes Prefect's whole context, settings included, for every task run and
sends each run to the scheduler on its own; the worker rebuilds Prefect's settings from that
context (every nested settings model re-reads the environment and dotenv/toml files) and
creates two API clients (each loads the CA bundle into a new SSL context). Here a compute's
task runs go to the scheduler as one graph, the context is scattered to the cluster once,
and each worker rebuilds the settings once and keeps one started API client per thread for
it; every task run still enters that same context, so Prefect sees what it sees under
``DaskTaskRunner.submit``.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from dask.task_spec import List, Task, TaskRef

from pipex.executors.prefect.runtime import DaskTaskRunner, as_completed

try:
    from types import SimpleNamespace

    from distributed import Future as DaskFuture
    from distributed import as_completed as dask_as_completed
    from prefect.client.schemas.objects import State
    from prefect.context import (
        SettingsContext,
        SyncClientContext,
        serialize_context,
    )
    from prefect.task_engine import run_task_sync
    from prefect.utilities.engine import collect_task_run_inputs_sync
    from prefect_dask.task_runners import PrefectDaskFuture

    _fast_dask: Any = SimpleNamespace(
        DaskFuture=DaskFuture,
        PrefectDaskFuture=PrefectDaskFuture,
        State=State,
        as_completed=dask_as_completed,
        SettingsContext=SettingsContext,
        SyncClientContext=SyncClientContext,
        collect_task_run_inputs_sync=collect_task_run_inputs_sync,
        run_task_sync=run_task_sync,
        serialize_context=serialize_context,
    )
except ImportError:  # pragma: no cover - other Prefect versions
    _fast_dask = None

_SETTINGS = "settings_context"  # the part of Prefect's serialized context rebuilt once

#: Prefect releases (major.minor) whose internals the fast path is tested on.
SUPPORTED = ("3.8", "3.9")


def submit_all(task_runner: Any, runs: Sequence[Run]) -> list[Any]:
    """Submit task runs to ``task_runner``, each after the earlier runs it waits for; their
    Prefect futures, in order.

    For a ``DaskTaskRunner``, as prefect-dask does it, but as one dask graph (one round trip
    to the scheduler for all of them), with Prefect's context sent to the cluster once and
    hydrated once per worker, and without dask hashing each run's arguments. Any other task
    runner: ``task.submit`` for each.
    """
    if isinstance(task_runner, DaskTaskRunner) and _fast_dask is not None:
        return _submit_graph(task_runner.client, runs)
    futures: list[Any] = []
    for run in runs:
        wait_for = [futures[i] for i in run.wait_for]
        futures.append(run.task.submit(**run.parameters, wait_for=wait_for))
    return futures


class Run(NamedTuple):
    """One task run to submit: its Prefect task, its parameters, and the positions (in the
    runs submitted with it) of the earlier runs it waits for."""

    task: Any
    parameters: dict[str, Any]
    wait_for: list[int]


def _submit_graph(client: Any, runs: Sequence[Run]) -> list[Any]:
    """The runs as one dask graph of :func:`run_task` calls sharing one scattered context.

    Each waits for the final states of the runs it waits for, as with prefect-dask.
    """
    fast = _fast_dask
    shared = client.scatter(Shared(fast.serialize_context()), hash=False)
    graph: dict[str, Any] = {}
    ids: list[uuid.UUID] = []
    keys: list[str] = []
    for run in runs:
        task_run_id = uuid.uuid4()
        key = f"{run.parameters['run_name']}-{task_run_id.hex[:8]}"
        wait_for = List(*(TaskRef(keys[i]) for i in run.wait_for)) if run.wait_for else None
        graph[key] = Task(
            key,
            run_task,
            shared,
            task=run.task,
            task_run_id=task_run_id,
            parameters=run.parameters,
            wait_for=wait_for,
            dependencies={
                name: fast.collect_task_run_inputs_sync(value, future_cls=fast.DaskFuture)
                for name, value in run.parameters.items()
            },
        )
        ids.append(task_run_id)
        keys.append(key)
    futures = client.get(graph, keys, sync=False)
    return [
        fast.PrefectDaskFuture(wrapped_future=future, task_run_id=task_run_id)
        for future, task_run_id in zip(futures, ids, strict=True)
    ]


def finished(futures: list[Any]) -> Iterator[tuple[Any, Any]]:
    """Each of ``futures`` with its final state, as its run finishes.

    Futures of :func:`submit_all` on a ``DaskTaskRunner``: the states of the runs finished
    meanwhile are fetched together (one gather per batch, not one per run).
    """
    fast = _fast_dask
    if not futures:
        return
    if fast is None or not all(isinstance(f, fast.PrefectDaskFuture) for f in futures):
        for future in as_completed(futures):
            future.wait()
            yield future, future.state
        return
    by_key = {future.wrapped_future.key: future for future in futures}
    wrapped = [future.wrapped_future for future in futures]
    client = wrapped[0].client
    for batch in fast.as_completed(wrapped, loop=client.loop).batches():
        done = [f for f in batch if f.status == "finished"]
        states = client.gather(done) if done else []
        for dask_future, state in zip(done, states, strict=True):
            future = by_key[dask_future.key]
            yield future, state if isinstance(state, fast.State) else future.state
        for dask_future in batch:  # it raised or was cancelled: what Prefect knows of it
            if dask_future.status != "finished":
                yield by_key[dask_future.key], by_key[dask_future.key].state


def run_task(shared: Shared, **kwargs: Any) -> Any:
    """On a worker: one task run, as ``DaskTaskRunner.submit`` runs it, in ``shared``'s
    context; its final state."""
    with shared.entered():
        return _fast_dask.run_task_sync(**kwargs, return_type="state", context=shared.context)


class Shared:
    """Prefect's serialized context for a compute's task runs, in one object per worker.

    Its settings are rebuilt the first time a task run enters it; each thread keeps one
    started API client for it, closed when the object goes.
    """

    def __init__(self, serialized: dict[str, Any]) -> None:
        self.serialized = serialized
        # no asset context: pipex's task runs have no assets, Prefect's engine makes an empty one
        self.context = {k: v for k, v in serialized.items() if k != _SETTINGS}
        self._lock = threading.Lock()
        self._settings: Any = None
        self._threads = threading.local()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Shared, (self.serialized,))

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Prefect's settings and a started API client of this context, for one task run."""
        with self._settings_context().model_copy():
            clients = getattr(self._threads, "client", None)
            if clients is None:
                clients = self._threads.client = _started_client_context(self)
            with clients:
                yield

    def _settings_context(self) -> Any:
        with self._lock:
            if self._settings is None:
                serialized = self.serialized.get(_SETTINGS)
                self._settings = (
                    _fast_dask.SettingsContext(**serialized)
                    if serialized
                    else _fast_dask.SettingsContext.get()
                )
            return self._settings


def _started_client_context(owner: Any) -> Any:
    """A ``SyncClientContext`` whose client stays open (entering and leaving it per task run
    does not close it) until ``owner`` is collected."""
    context = _fast_dask.SyncClientContext()
    client = context.client.__enter__()
    weakref.finalize(owner, client.__exit__, None, None, None)
    return context
