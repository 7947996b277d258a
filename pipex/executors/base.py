"""The one interface of executors: run a plan's missing nodes, report each outcome."""

from __future__ import annotations

import abc
from typing import Any, Protocol

from pipex.core.outcomes import Outcome
from pipex.core.plan import Plan


class Observer(Protocol):
    """Told each task's outcome as it arrives (:class:`pipex.running.Observers`)."""

    def record(self, key: str, outcome: Any) -> None: ...


class Executor(abc.ABC):
    """Runs plans (one or several batches of one :func:`pipex.compute`), then is closed."""

    @abc.abstractmethod
    def execute(
        self, plan: Plan, observer: Observer, keep_going: bool, **options: Any
    ) -> dict[str, Outcome]:
        """Run ``plan.missing``; the outcome of each node, by key.

        Every outcome is also reported to ``observer`` as it arrives. With ``keep_going``
        false, the first failure is raised as it is. ``options`` go to the scheduler.
        """

    def close(self) -> None:  # noqa: B027 - most executors open nothing
        """Release what the executor opened for the run (a client it connected, say)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
