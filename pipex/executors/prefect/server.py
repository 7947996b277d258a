"""The temporary Prefect server of a flow process with no Prefect API configured: the Dask
workers of the flow's default task runner report to it, and its shutdown is quiet."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from pipex.executors.prefect.runtime import (
    AsyncClientContext,
    SyncClientContext,
    get_current_settings,
)
from pipex.executors.prefect.runtime import DaskTaskRunner as _DaskTaskRunner

API_URL = "PREFECT_API_URL"
SERVER_LOGGING_LEVEL = "PREFECT_SERVER_LOGGING_LEVEL"


class DaskTaskRunner(_DaskTaskRunner):
    """``prefect_dask.DaskTaskRunner`` whose worker processes use the flow process's API.

    With no ``PREFECT_API_URL`` configured, the flow process starts a temporary Prefect
    server. Worker processes read Prefect's settings from their environment, so each started
    a temporary server of its own (seconds of start-up each; its task runs were lost when it
    stopped). While this runner is entered, ``PREFECT_API_URL`` names the flow process's
    server, and the workers its cluster starts inherit it.
    """

    def __enter__(self) -> Any:
        self._api_url = ExitStack()
        self._api_url.enter_context(api_url_exported())
        try:
            return super().__enter__()
        except BaseException:
            self._api_url.close()
            raise

    def __exit__(self, *args: Any) -> None:
        try:
            super().__exit__(*args)
        finally:
            self._api_url.close()


@contextmanager
def api_url_exported() -> Iterator[None]:
    """``PREFECT_API_URL`` in this process's environment set to the API of the current Prefect
    client (the flow run's), unless the environment already has one; restored on leaving."""
    context = SyncClientContext.get() or AsyncClientContext.get()
    url = str(context.client.api_url).rstrip("/") if context and context.client else ""
    with _environment(API_URL, url):
        yield


@contextmanager
def quiet_temporary_server() -> Iterator[None]:
    """A temporary Prefect server started meanwhile logs at ``CRITICAL`` only.

    When it stops at the end of a script, Prefect's server cancels its task-run recorder
    while the last events are being written, and logs "Error flushing 1 events" with a
    traceback after every successful run. Nothing changes when an API is configured (no
    temporary server) or ``PREFECT_SERVER_LOGGING_LEVEL`` is set.
    """
    temporary = not get_current_settings().api.url
    with _environment(SERVER_LOGGING_LEVEL, "CRITICAL" if temporary else ""):
        yield


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` in this process's environment (inherited by the processes it
    starts), unless ``value`` is empty or ``name`` is set already; removed on leaving."""
    if not value or os.environ.get(name):
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        if os.environ.get(name) == value:
            del os.environ[name]
