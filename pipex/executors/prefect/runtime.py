"""Prefect 3 and prefect-dask, imported once for every Prefect module of pipex.

Only the Prefect modes import this, so core pipex never imports Prefect. Without the extra,
importing it says what to install.
"""

from __future__ import annotations

from typing import Any

from pipex import settings

try:
    import prefect
    from prefect.cache_policies import NO_CACHE
    from prefect.context import (
        AsyncClientContext,
        FlowRunContext,
        SyncClientContext,
        TaskRunContext,
    )
    from prefect.futures import as_completed
    from prefect.logging import get_run_logger
    from prefect.logging.configuration import PROCESS_LOGGING_CONFIG, setup_logging
    from prefect.logging.loggers import PrefectLogAdapter, get_logger
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings
    from prefect.states import Failed
    from prefect_dask import DaskTaskRunner
except ImportError as exc:
    raise ImportError(
        "the Prefect modes of pipex (PIPEX=prefect, PIPEX=prefect+cache) need Prefect 3 and "
        f"prefect-dask, which could not be imported ({exc}): pip install 'dask-pipex[prefect]'"
    ) from exc

__all__ = [
    "NO_CACHE",
    "AsyncClientContext",
    "DaskTaskRunner",
    "Failed",
    "FlowRunContext",
    "Held",
    "PrefectLogAdapter",
    "SubprocessASGIServer",
    "SyncClientContext",
    "as_completed",
    "get_current_settings",
    "get_logger",
    "get_run_logger",
    "granularity",
    "in_flow_run",
    "logging_configured",
    "prefect",
    "retries_of",
]

GRANULARITIES = ("node", "graph")


def granularity() -> str:
    """``pipex.prefect.granularity``: ``node`` (default) or ``graph``."""
    value = settings.choice(
        "prefect.granularity",
        GRANULARITIES,
        "'node' runs each missing node as its own Prefect task run, 'graph' runs each batch "
        "of the missing graph as one Prefect task run",
    )
    return str(value)


def in_flow_run() -> bool:
    """Whether the caller is a Prefect flow run's own code (not inside one of its tasks)."""
    return FlowRunContext.get() is not None and TaskRunContext.get() is None


def logging_configured() -> None:
    """Prefect's logging set up in this process (a dask worker that runs no Prefect task run
    has not): once, so that run loggers send records to the API."""
    if not PROCESS_LOGGING_CONFIG:
        setup_logging()


def retries_of(task: Any) -> int:
    """``@pipex.task(retries=N)``: Prefect retries the task run up to N times."""
    return int(getattr(task, "retries", 0) or 0)


class Held:
    """Hands a value to a Prefect task without Prefect or dask looking inside it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (Held, (self.value,))
