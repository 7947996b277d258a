"""Submitting task runs to a ``DaskTaskRunner`` the way prefect-dask does, but cheaper.

This is the one module that leans on prefect-dask and Prefect internals (checked with
prefect 3.8 and prefect-dask 0.3.7): ``prefect.task_engine.run_task_sync``,
``prefect.context.serialize_context`` and ``AssetContext``,
``prefect.utilities.engine.collect_task_run_inputs_sync``, and
``prefect_dask.task_runners.PrefectDaskFuture`` wrapping a ``distributed.Future`` — what
``DaskTaskRunner.submit`` itself does. If any of them is missing (another Prefect version),
task runs are submitted with ``task.submit`` instead: slower, same result.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pipex.executors.prefect.runtime import DaskTaskRunner

try:
    from types import SimpleNamespace

    from distributed import Future as DaskFuture
    from prefect.context import AssetContext, serialize_context
    from prefect.task_engine import run_task_sync
    from prefect.utilities.engine import collect_task_run_inputs_sync
    from prefect_dask.task_runners import PrefectDaskFuture

    _fast_dask: Any = SimpleNamespace(
        AssetContext=AssetContext,
        DaskFuture=DaskFuture,
        PrefectDaskFuture=PrefectDaskFuture,
        collect_task_run_inputs_sync=collect_task_run_inputs_sync,
        run_task_sync=run_task_sync,
        serialize_context=serialize_context,
    )
except ImportError:  # pragma: no cover - other Prefect versions
    _fast_dask = None


def submitter(task_runner: Any) -> Callable[[Any, dict[str, Any], list[Any]], Any]:
    """How to submit one task run to ``task_runner``: ``submit(task, parameters, wait_for)``.

    For a ``DaskTaskRunner``, as prefect-dask does it, but with Prefect's context serialized
    once for all of a compute's task runs (prefect-dask serializes it, settings included, for
    every one: ~60 ms each here) and without dask hashing each run's arguments. Any other
    task runner: ``task.submit``.
    """
    if isinstance(task_runner, DaskTaskRunner) and _fast_dask is not None:
        return _DaskSubmitter(task_runner.client)

    def submit(task: Any, parameters: dict[str, Any], wait_for: list[Any]) -> Any:
        return task.submit(**parameters, wait_for=wait_for)

    return submit


class _DaskSubmitter:
    """Submits task runs to a ``DaskTaskRunner``'s client, reusing one serialized context."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.context = _fast_dask.serialize_context()

    def __call__(self, task: Any, parameters: dict[str, Any], wait_for: list[Any]) -> Any:
        fast = _fast_dask
        task_run_id = uuid.uuid4()
        dependencies = {
            name: fast.collect_task_run_inputs_sync(value, future_cls=fast.DaskFuture)
            for name, value in parameters.items()
        }
        context = dict(self.context)
        context["asset_context"] = fast.AssetContext.from_task_and_inputs(
            task=task, task_run_id=task_run_id, task_inputs=dependencies, copy_to_child_ctx=True
        ).serialize()
        future = self.client.submit(
            fast.run_task_sync,
            key=f"{parameters['run_name']}-{task_run_id.hex[:8]}",
            pure=False,
            task=task,
            task_run_id=task_run_id,
            parameters=parameters,
            wait_for=[f.wrapped_future for f in wait_for] or None,
            return_type="state",
            dependencies=dependencies,
            context=context,
        )
        return fast.PrefectDaskFuture(wrapped_future=future, task_run_id=task_run_id)
