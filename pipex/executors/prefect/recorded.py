"""Waiting for Prefect's temporary server to record a compute's task runs.

Task runs reach a Prefect 3 server as events; its task-run recorder writes them to the
database behind the run. A temporary server (no ``PREFECT_API_URL``) stops when the flow's
script ends, and what its recorder has not written by then is lost. So a compute on that
server waits, up to ``pipex.prefect.record-timeout`` seconds, until the server has each of
its task runs with the final state the flow saw, and warns with how many it lacks if not.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from pipex import settings
from pipex.executors.prefect.runtime import get_current_settings, prefect

logger = logging.getLogger("pipex")

#: Task runs asked for per request (the API's default page limit).
PAGE = 200


def wait_recorded(states: Mapping[uuid.UUID, str], run_logger: Any = None) -> int:
    """Wait until the temporary Prefect server has recorded each task run of ``states`` (id
    -> name of its final state) in that state, or ``pipex.prefect.record-timeout`` passed;
    how many it lacks (warned of, on ``run_logger`` too). Nothing to wait for with a
    configured server: it records on after the flow ends."""
    if not states or get_current_settings().api.url:
        return 0
    timeout = float(settings.get("prefect.record-timeout"))
    start = time.monotonic()
    left = dict(states)
    with prefect.get_client(sync_client=True) as client:
        while left:
            for run in _read(client, list(left)):
                if run.state is not None and run.state.name == left.get(run.id):
                    del left[run.id]
            if not left or time.monotonic() - start > timeout:
                break
            time.sleep(0.5)
    if left:
        message = (
            f"Prefect's temporary server recorded {len(states) - len(left)} of the {len(states)} "
            f"task runs of this compute with their final states within {timeout:g} s; "
            f"{len(left)} are missing from its database or not in their final state (its "
            "task-run recorder is behind; what it has not written when the script ends is "
            "lost). Their pipex outcomes are known and their targets written. Raise "
            "pipex.prefect.record-timeout, or run against a Prefect server of your own "
            "(prefect server start; PREFECT_API_URL), which records on after the flow ends"
        )
        logger.warning("pipex: %s", message)
        if run_logger is not None:
            run_logger.warning("pipex: %s", message)
    return len(left)


def _read(client: Any, ids: list[uuid.UUID]) -> list[Any]:
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterId

    runs: list[Any] = []
    for first in range(0, len(ids), PAGE):
        page = ids[first : first + PAGE]
        runs += client.read_task_runs(
            task_run_filter=TaskRunFilter(id=TaskRunFilterId(any_=page)), limit=len(page)
        )
    return runs
