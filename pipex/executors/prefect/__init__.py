"""Prefect 3 integration: ``PIPEX=prefect`` and ``PIPEX=prefect+cache``.

- ``PIPEX=prefect``: a pipex task call is a plain Prefect task run (pipex's own options are
  ignored) and :func:`pipex.flow` is :func:`prefect.flow` (:mod:`.plain`).
- ``PIPEX=prefect+cache``: :func:`pipex.flow` is a Prefect flow whose task runner defaults to
  ``prefect_dask.DaskTaskRunner``. Inside its run, :func:`pipex.compute` resolves the pipex
  graph as in cache mode and runs only what is missing, on the flow's task runner: one task
  run per missing node (:mod:`.nodes`, ``pipex.prefect.granularity: node``, the default) or
  one per batch of the missing graph (:mod:`.graph`, ``graph``). Finished nodes create no task
  run. Outside a flow run, ``prefect+cache`` is ``cache``.

This ``__init__`` does not import Prefect; the modules beside it do (:mod:`.runtime`).
"""

from __future__ import annotations

from typing import Any

from pipex import settings
from pipex.executors.base import Executor

#: Scheduler options are not used by Prefect's task runners: taken, and warned about.
OPTIONS: frozenset[str] = frozenset()


def claim(scheduler: Any) -> Executor | None:
    """A :class:`~pipex.executors.prefect.executor.PrefectExecutor` with
    ``PIPEX=prefect+cache`` in a flow run's own code; ``scheduler`` is not used there."""
    if settings.mode() != "prefect+cache":
        return None
    from pipex.executors.prefect.runtime import in_flow_run

    if not in_flow_run():
        return None
    from pipex.executors.prefect.executor import PrefectExecutor

    return PrefectExecutor()
