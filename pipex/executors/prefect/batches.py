"""``PIPEX=prefect+cache``: the batches of mapped steps' items, one Prefect task run each.

A batch's task run is named ``<step>[first..last]`` (:func:`run_name`, the one naming
function), runs :func:`pipex.core.batch.run_batch` on the flow's task runner, and returns
the batch's result (per-item failures inside it: a batch run fails only when the batch
itself does). Finished items make no task run.
"""

from __future__ import annotations

from typing import Any

from pipex.core.batch import Batch, BatchResult, run_batch
from pipex.executors.prefect.logs import logs_to
from pipex.executors.prefect.runtime import NO_CACHE, Held, get_run_logger, prefect

#: Batches in flight at once on the flow's task runner (its workers are not known here).
WORKERS = 4


def run_name(batch: Batch) -> str:
    """The task-run name of a batch: ``<step>[first..last]``."""
    return batch.name


class PrefectPool:
    """Batches as task runs of the current flow run, waited for oldest first."""

    def __init__(self) -> None:
        self.workers = WORKERS
        self.tasks: dict[str, Any] = {}

    def submit(self, batch: Batch, keep_going: bool) -> Any:
        name = batch.steps[-1].name
        task = self.tasks.get(name)
        if task is None:
            task = self.tasks[name] = prefect.task(  # type: ignore[call-overload]
                _run_batch,
                name=name,
                task_run_name="{run_name}",
                cache_policy=NO_CACHE,
                persist_result=False,
            )
        return task.submit(run_name(batch), Held(batch), keep_going)

    def wait(self, handles: list[Any]) -> list[Any]:
        handles[0].wait()
        return [handles[0]]

    def result(self, handle: Any) -> BatchResult:
        return handle.result()

    def __enter__(self) -> PrefectPool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _run_batch(run_name: str, batch: Held, keep_going: bool) -> BatchResult:
    """Body of a batch's Prefect task run."""
    with logs_to(get_run_logger()):
        return run_batch(batch.value, keep_going)
