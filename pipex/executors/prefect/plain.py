"""``PIPEX=prefect``: a pipex task call is a plain Prefect task run; ``pipex.flow`` in both
Prefect modes is a Prefect flow (with Dask's task runner under ``prefect+cache``)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pipex.executors.prefect.crashed import mark_crashed
from pipex.executors.prefect.runtime import prefect, retries_of
from pipex.executors.prefect.server import DaskTaskRunner, start_temporary_server

logger = logging.getLogger("pipex")

_PLAIN_TASK = "_pipex_prefect_task"  # attribute caching a TaskFunction's plain Prefect task


def call_as_task(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run one call of a pipex task as a plain Prefect task (``PIPEX=prefect``)."""
    plain = task.__dict__.get(_PLAIN_TASK)
    if plain is None:
        plain = prefect.task(task.fn, name=task.name, retries=retries_of(task))
        setattr(task, _PLAIN_TASK, plain)
        logger.debug(
            "PIPEX=prefect: task %s runs as a plain Prefect task; its pipex options are "
            "ignored (%s)",
            task.name,
            task.options,
        )
    return plain(*args, **kwargs)


def as_flow(fn: Callable[..., Any], options: Mapping[str, Any], mode: str) -> Any:
    """``fn`` as a Prefect flow; in ``prefect+cache`` its task runner defaults to Dask's (its
    workers on the flow's Prefect server). A temporary server it starts ends with this process
    (:mod:`.server`); its runs left ``Running`` by killed processes are marked ``Crashed``
    when it runs again (:mod:`.crashed`)."""
    options = dict(options)
    options["on_running"] = [*(options.get("on_running") or []), mark_crashed]
    if mode == "prefect+cache":
        options.setdefault("task_runner", DaskTaskRunner())
    prefect_flow = prefect.flow(fn, **options)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        start_temporary_server()
        return prefect_flow(*args, **kwargs)

    return run
