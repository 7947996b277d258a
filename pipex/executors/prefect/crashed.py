"""Flow runs left ``Running`` by a flow process that was killed are marked ``Crashed``.

A flow process killed with SIGKILL cannot tell Prefect it ended: its flow run, and its task
runs in flight, stay ``Running`` on the server forever. A pipex flow records its process in
its flow run as it starts (``infrastructure_pid``: ``host:pid:start time``, as Prefect's
process workers write ``host:pid``), and marks ``Crashed`` the runs of the same flow still
``Running`` whose process on this host is gone, with their unfinished task runs.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

import psutil

from pipex.executors.prefect.runtime import prefect
from pipex.stores import owners

logger = logging.getLogger("pipex")

#: At most this many pages of a crashed run's unfinished task runs are marked.
PAGES = 1000


def this_process() -> str:
    """``host:pid:start time`` of this process (what ``infrastructure_pid`` records)."""
    return f"{socket.gethostname()}:{os.getpid()}:{psutil.Process().create_time()!r}"


def gone(infrastructure_pid: str | None) -> bool:
    """Whether the process named by a flow run's ``infrastructure_pid`` is known to be gone:
    only this host's processes can be looked at."""
    host, _, rest = (infrastructure_pid or "").partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        started: float | None = float(start) if start else None
    except ValueError:
        started = None
    return not owners.running(int(pid), started)


def mark_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    """A flow's ``on_running`` hook: record this process in its flow run, and mark ``Crashed``
    the runs of the same flow left ``Running`` by processes that are gone."""
    try:
        with prefect.get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, infrastructure_pid=this_process())
            for run in _running(client, flow_run.flow_id):
                if run.id != flow_run.id and gone(run.infrastructure_pid):
                    _crash(client, run)
    except Exception as exc:  # the flow itself goes on
        logger.warning(
            "pipex: could not look for runs of flow %r left Running by killed processes: %s",
            flow.name,
            exc,
        )


def _running(client: Any, flow_id: uuid.UUID) -> list[Any]:
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    return list(
        client.read_flow_runs(
            flow_filter=FlowFilter(id=FlowFilterId(any_=[flow_id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
                )
            ),
        )
    )


def _crash(client: Any, run: Any) -> None:
    """Mark a flow run and its unfinished task runs ``Crashed``."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    message = (
        f"its flow process ({run.infrastructure_pid}) is gone, killed without ending the run; "
        "marked Crashed by pipex when the flow ran again"
    )
    for _ in range(PAGES):  # a page at a time: those marked drop out of the next read
        unfinished = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
            task_run_filter=TaskRunFilter(
                state=TaskRunFilterState(
                    type=TaskRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
                )
            ),
        )
        if not unfinished:
            break
        for task_run in unfinished:
            client.set_task_run_state(task_run.id, Crashed(message=message), force=True)
    client.set_flow_run_state(run.id, Crashed(message=message), force=True)
    logger.warning("pipex: flow run %s (%s) marked Crashed: %s", run.name, run.id, message)
