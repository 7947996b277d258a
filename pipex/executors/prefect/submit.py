"""Submitting task runs to a ``DaskTaskRunner`` the way prefect-dask does, but cheaper.

This is the one module that leans on prefect-dask and Prefect internals (checked with
prefect 3.8 and prefect-dask 0.3.7): ``prefect.task_engine.run_task_sync``,
``prefect.context.serialize_context``, ``SettingsContext``, ``SyncClientContext`` and
``AssetContext``, ``prefect.utilities.engine.collect_task_run_inputs_sync``, and
``prefect_dask.task_runners.PrefectDaskFuture`` wrapping a ``distributed.Future`` — what
``DaskTaskRunner.submit`` itself does. If any of them is missing (another Prefect version),
task runs are submitted with ``task.submit`` instead: slower, same result.

Where a task run's time goes with prefect-dask's own ``submit`` (measured, see
docs/benchmarks.md): the flow process serializes Prefect's whole context, settings included,
for every task run; the worker rebuilds Prefect's settings from it (every nested settings
model re-reads the environment and dotenv/toml files) and creates two API clients (each loads
the CA bundle into a new SSL context). Here the context is scattered to the cluster once per
compute, and each worker rebuilds the settings once and keeps one started API client per
thread for it; every task run still enters that same context, so Prefect sees what it sees
under ``DaskTaskRunner.submit``.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pipex.executors.prefect.runtime import DaskTaskRunner

try:
    from types import SimpleNamespace

    from distributed import Future as DaskFuture
    from prefect.context import (
        AssetContext,
        SettingsContext,
        SyncClientContext,
        serialize_context,
    )
    from prefect.task_engine import run_task_sync
    from prefect.utilities.engine import collect_task_run_inputs_sync
    from prefect_dask.task_runners import PrefectDaskFuture

    _fast_dask: Any = SimpleNamespace(
        AssetContext=AssetContext,
        DaskFuture=DaskFuture,
        PrefectDaskFuture=PrefectDaskFuture,
        SettingsContext=SettingsContext,
        SyncClientContext=SyncClientContext,
        collect_task_run_inputs_sync=collect_task_run_inputs_sync,
        run_task_sync=run_task_sync,
        serialize_context=serialize_context,
    )
except ImportError:  # pragma: no cover - other Prefect versions
    _fast_dask = None

_SETTINGS = "settings_context"  # the part of Prefect's serialized context rebuilt once


def submitter(task_runner: Any) -> Callable[[Any, dict[str, Any], list[Any]], Any]:
    """How to submit one task run to ``task_runner``: ``submit(task, parameters, wait_for)``.

    For a ``DaskTaskRunner``, as prefect-dask does it, but with Prefect's context sent to
    the cluster once for all of a compute's task runs and hydrated once per worker, and
    without dask hashing each run's arguments. Any other task runner: ``task.submit``.
    """
    if isinstance(task_runner, DaskTaskRunner) and _fast_dask is not None:
        return _DaskSubmitter(task_runner.client)

    def submit(task: Any, parameters: dict[str, Any], wait_for: list[Any]) -> Any:
        return task.submit(**parameters, wait_for=wait_for)

    return submit


class _DaskSubmitter:
    """Submits task runs to a ``DaskTaskRunner``'s client, all sharing one scattered
    :class:`Shared` context (released when the submitter is)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.shared = client.scatter(Shared(_fast_dask.serialize_context()), hash=False)

    def __call__(self, task: Any, parameters: dict[str, Any], wait_for: list[Any]) -> Any:
        fast = _fast_dask
        task_run_id = uuid.uuid4()
        dependencies = {
            name: fast.collect_task_run_inputs_sync(value, future_cls=fast.DaskFuture)
            for name, value in parameters.items()
        }
        asset_context = fast.AssetContext.from_task_and_inputs(
            task=task, task_run_id=task_run_id, task_inputs=dependencies, copy_to_child_ctx=True
        ).serialize()
        future = self.client.submit(
            run_task,
            self.shared,
            asset_context,
            key=f"{parameters['run_name']}-{task_run_id.hex[:8]}",
            pure=False,
            task=task,
            task_run_id=task_run_id,
            parameters=parameters,
            wait_for=[f.wrapped_future for f in wait_for] or None,
            dependencies=dependencies,
        )
        return fast.PrefectDaskFuture(wrapped_future=future, task_run_id=task_run_id)


def run_task(shared: Shared, asset_context: dict[str, Any], **kwargs: Any) -> Any:
    """On a worker: one task run, as ``DaskTaskRunner.submit`` runs it, in ``shared``'s
    context; its final state."""
    context = {**shared.context, "asset_context": asset_context}
    with shared.entered():
        return _fast_dask.run_task_sync(**kwargs, return_type="state", context=context)


class Shared:
    """Prefect's serialized context for a compute's task runs, in one object per worker.

    Its settings are rebuilt the first time a task run enters it; each thread keeps one
    started API client for it, closed when the object goes.
    """

    def __init__(self, serialized: dict[str, Any]) -> None:
        self.serialized = serialized
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
