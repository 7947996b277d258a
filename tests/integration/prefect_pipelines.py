"""Pipeline pieces for the Prefect tests that :mod:`tests.pipelines` does not have.

Importable by dask worker processes (they find the tests package on ``PYTHONPATH``).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

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


@pipex.task(target="{path}/gate/{name}.pkl")
def gate(name: str, other: str | None, folder: str, calls: str, seconds: float = 60) -> bool:
    """Says it started (a file ``started-<name>`` in ``folder``), then, given ``other``,
    waits up to ``seconds`` for ``other`` to start: whether it did, recorded as the call's
    name (``a saw b``, ``a missed b``) and returned."""
    record(calls, "gate", name)
    Path(folder, f"started-{name}").touch()
    if other is None:
        return True
    deadline = time.monotonic() + seconds
    while not Path(folder, f"started-{other}").exists():
        if time.monotonic() > deadline:
            record(calls, "gate", f"{name}-missed-{other}")
            return False
        time.sleep(0.05)
    record(calls, "gate", f"{name}-saw-{other}")
    return True
