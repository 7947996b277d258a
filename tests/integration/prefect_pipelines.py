"""Pipeline pieces for the Prefect tests that :mod:`tests.pipelines` does not have.

Importable by dask worker processes (they find the tests package on ``PYTHONPATH``).
"""

from __future__ import annotations

import logging
import os

import pipex
from tests.pipelines import calls as recorded
from tests.pipelines import record

log = logging.getLogger(__name__)


@pipex.task(target="{path}/noisy/{name}.pkl")
def noisy(name: str, calls: str) -> str:
    """Logs one warning through the standard ``logging`` module, then returns ``name``."""
    record(calls, "noisy", name)
    log.warning("noisy task says %s", name)
    return name


@pipex.task(target="{path}/flaky/{name}.pkl", retries=1)
def flaky(name: str, calls: str) -> str:
    """Fails on its first call for ``name``, succeeds on the next (one retry allowed)."""
    first = not any(task == "flaky" and n == name for task, n, _ in recorded(calls))
    record(calls, "flaky", name)
    if first:
        raise RuntimeError(f"flaky {name}: first call fails")
    return name


_SEEN: list[object] = []  # keeps every settings object seen alive, so their ids stay distinct


@pipex.task(target="{path}/settings/{name}.pkl")
def settings_seen(name: str, calls: str) -> tuple[int, int, int]:
    """``(pid, id of Prefect's settings object, client.max_retries)`` as its task run sees
    them."""
    from prefect.settings import get_current_settings

    record(calls, "settings_seen", name)
    settings = get_current_settings()
    _SEEN.append(settings)
    return os.getpid(), id(settings), settings.client.max_retries
