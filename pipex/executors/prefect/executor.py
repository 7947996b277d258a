"""``PIPEX=prefect+cache`` inside a flow run: missing nodes run on the flow's task runner."""

from __future__ import annotations

import logging
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pipex.core.outcomes import Outcome
from pipex.core.plan import Plan
from pipex.executors.ahead import ahead, in_turn
from pipex.executors.base import Executor, Observer
from pipex.executors.prefect.batches import PrefectPool
from pipex.executors.prefect.graph import run_graph
from pipex.executors.prefect.nodes import run_nodes
from pipex.executors.prefect.recorded import wait_recorded
from pipex.executors.prefect.runtime import get_run_logger, granularity

logger = logging.getLogger("pipex")


class PrefectExecutor(Executor):
    """Runs each plan (a batch) as Prefect task runs: one per node, or one for all of it;
    mapped steps' items as one task run per batch of items.

    In ``graph`` granularity the next batch's task run starts while the current one runs
    (:func:`~pipex.executors.ahead.ahead`), and the temporary server is waited for once,
    when the last batch has ended, until it has recorded every batch's task run. Each graph
    batch's name says which of the run's missing nodes it holds: counted in the order the
    batches come, whichever thread runs them.
    """

    def __init__(self) -> None:
        self._placed = 0
        self._starts: dict[int, int] = {}  # id of a batch given to execute_batches -> start
        self._recording: dict[uuid.UUID, str] | None = None
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
                start = self._starts.pop(id(plan), None)
                recording = self._recording if start is not None else None
                if start is None:  # a plan of its own (an expansion's nodes)
                    start = self._place(plan)
            return run_graph(plan, observer, keep_going, start, recording)
        return run_nodes(plan, observer, keep_going)

    def execute_batches(
        self,
        batches: Iterable[Plan],
        execute: Callable[[Plan], dict[str, Outcome]],
        keep_going: bool,
    ) -> Iterator[dict[str, Outcome]]:
        """Graph batches: the next one's task run started while the current one runs (with
        ``keep_going``; without, the first failure ends the run: one after the other)."""
        if granularity() != "graph":
            yield from in_turn(batches, execute)
            return
        recording: dict[uuid.UUID, str] = {}
        self._recording = recording
        placed = self._placed_in_order(batches)
        interrupted = False
        try:
            if keep_going:
                yield from ahead(placed, execute)
            else:
                yield from in_turn(placed, execute)
        except (KeyboardInterrupt, SystemExit):
            interrupted = True
            raise
        finally:
            self._recording = None
            if not interrupted:  # ended, or a failure raised: what ran is recorded first
                wait_recorded(recording, get_run_logger())

    def _placed_in_order(self, batches: Iterable[Plan]) -> Iterator[Plan]:
        for batch in batches:
            with self._lock:
                self._starts[id(batch)] = self._place(batch)
            yield batch

    def _place(self, plan: Plan) -> int:
        """Where ``plan``'s nodes start among the run's missing nodes (call with the lock)."""
        start, self._placed = self._placed, self._placed + len(plan.missing)
        return start
