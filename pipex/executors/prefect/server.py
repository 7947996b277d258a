"""The temporary Prefect server of a flow process with no Prefect API configured: the Dask
workers of the flow's default task runner report to it, and it ends with the flow process."""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from pipex.executors.prefect.runtime import (
    AsyncClientContext,
    SubprocessASGIServer,
    SyncClientContext,
    get_current_settings,
    prefect,
)
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
    url = str(context.client.api_url).rstrip("/") if context and context.client else ""
    with _environment(API_URL, url):
        yield


def start_temporary_server() -> None:
    """Start Prefect's temporary server now, unless an API is configured or it runs already,
    such that it ends with this process, however this process ends.

    Prefect starts it on first use and stops it at exit; a flow process killed with SIGKILL
    left it running (an orphan holding its port and database). Started here, on Linux, it
    gets SIGTERM when this process dies (``PR_SET_PDEATHSIG``). Its task-run recorder writes
    in batches (:data:`RECORDER`, unless set): one transaction per event fell far behind.
    """
    if get_current_settings().api.url or SubprocessASGIServer._instances.get(None) is not None:
        return
    _TemporaryServer().start()


#: The temporary server's recorder settings, unless set: batches of up to 500 task-run events,
#: written at least every second.
RECORDER = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "500",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}


class _TemporaryServer(SubprocessASGIServer):
    """Prefect's temporary server (the instance Prefect's clients then use), started from a
    thread that lives as long as this process, with a parent-death signal."""

    def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
        return _forker().run(self._popen)

    def _popen(self) -> subprocess.Popen[Any]:
        # the command and environment of SubprocessASGIServer._run_uvicorn_command (Prefect
        # 3.8 and 3.9), with the recorder's defaults and the parent-death signal
        env = {
            **RECORDER,
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(Path(prefect.__file__).parent.parent),
        ]
        args += ["--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--log-level", "error", "--lifespan", "on"]
        return subprocess.Popen(args, env=env, preexec_fn=_dies_with(os.getpid()))


def _dies_with(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child sent SIGTERM when ``parent`` ends (Linux), and end
    at once if it already has; ``None`` where ``prctl`` is not there."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


PR_SET_PDEATHSIG = 1

_FORKER: _Forker | None = None
_FORKER_LOCK = threading.Lock()


def _forker() -> _Forker:
    global _FORKER
    with _FORKER_LOCK:
        if _FORKER is None:
            _FORKER = _Forker()
        return _FORKER


class _Forker:
    """A daemon thread that starts processes for the others and lives as long as this
    process: Linux sends the parent-death signal when the *thread* that started a child ends,
    so a child started from a thread that ends first would be stopped with it."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="pipex-prefect-server", daemon=True).start()

    def run(self, fn: Callable[[], Any]) -> Any:
        done: Future[Any] = Future()
        self._jobs.put((fn, done))
        return done.result()

    def _loop(self) -> None:
        while True:
            fn, done = self._jobs.get()
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)


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
