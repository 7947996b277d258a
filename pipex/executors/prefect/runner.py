"""The default task runner of ``PIPEX=prefect+cache`` flows: prefect-dask's, with its worker
processes on the flow's own Prefect server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from pipex.executors.prefect.runtime import AsyncClientContext, SyncClientContext
from pipex.executors.prefect.runtime import DaskTaskRunner as _DaskTaskRunner

API_URL = "PREFECT_API_URL"


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
    url = str(context.client.api_url).rstrip("/") if context is not None and context.client else ""
    if not url or os.environ.get(API_URL):
        yield
        return
    os.environ[API_URL] = url
    try:
        yield
    finally:
        if os.environ.get(API_URL) == url:
            del os.environ[API_URL]
