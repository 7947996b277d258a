"""Batches of mapped steps' items on a dask.distributed cluster: one future per batch.

The scheduler holds a few batches per worker thread at a time
(:mod:`pipex.executors.batches` keeps them in flight), never one task per item; each is
keyed ``<step>[first..last]`` (and the run's id), so the dashboard names what it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from distributed import as_completed

from pipex.core.batch import Batch, BatchResult, run_batch
from pipex.core.outcomes import portable
from pipex.executors.distributed.logs import running_task


def run_batch_on_worker(batch: Batch, keep_going: bool) -> BatchResult:
    """What a worker runs for one batch (known by its name to log forwarding)."""
    token = running_task.set(batch.name)
    try:
        return run_batch(batch, keep_going)
    except BaseException as exc:
        raise portable(exc) from None  # the client must be able to rebuild it
    finally:
        running_task.reset(token)


class ClusterPool:
    """Runs batches as futures of ``client``; ``options`` go to ``client.submit``."""

    def __init__(self, client: Any, run_id: str, options: Mapping[str, Any]) -> None:
        self.client = client
        self.run_id = run_id
        self.options = dict(options)
        self.workers = max(1, sum(client.nthreads().values()))
        self.finished = as_completed([], loop=client.loop)

    def submit(self, batch: Batch, keep_going: bool) -> Any:
        key = f"{batch.name}-{self.run_id}"
        future = self.client.submit(
            run_batch_on_worker, batch, keep_going, key=key, pure=False, **self.options
        )
        self.finished.add(future)
        return future

    def wait(self, handles: list[Any]) -> list[Any]:
        first = next(self.finished)
        return [first, *self.finished.next_batch(block=False)]

    def result(self, handle: Any) -> BatchResult:
        try:
            return handle.result()
        finally:
            handle.release()

    def __enter__(self) -> ClusterPool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
