"""``PIPEX=prefect+cache`` inside a flow run: missing nodes run on the flow's task runner."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Mapping
from typing import Any

from pipex.core.outcomes import Outcome
from pipex.core.plan import Plan
from pipex.executors.base import Executor, Observer
from pipex.executors.prefect.batches import PrefectPool
from pipex.executors.prefect.graph import run_graph
from pipex.executors.prefect.nodes import run_nodes
from pipex.executors.prefect.runtime import granularity

logger = logging.getLogger("pipex")


class PrefectExecutor(Executor):
    """Runs each plan (a batch) as Prefect task runs: one per node, or one for all of it;
    mapped steps' items as one task run per batch of items.

    Counts the nodes of the batches it ran, so that each graph batch's name says which of
    the run's missing nodes it holds.
    """

    def __init__(self) -> None:
        self._placed = 0
        self._lock = threading.Lock()

    def pool(self, options: Mapping[str, Any]) -> PrefectPool:
        return PrefectPool()

    def execute(
        self, plan: Plan, observer: Observer, keep_going: bool, **options: Any
    ) -> dict[str, Outcome]:
        if options:
            warnings.warn(
                f"PIPEX=prefect+cache: the flow's task runner runs the tasks; scheduler "
                f"options {', '.join(sorted(options))} are not used",
                stacklevel=3,
            )
        if granularity() == "graph":
            with self._lock:
                start, self._placed = self._placed, self._placed + len(plan.missing)
            return run_graph(plan, observer, keep_going, start)
        return run_nodes(plan, observer, keep_going)
