"""The one interface of executors: run a plan's missing nodes, report each outcome."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from dask.system import CPU_COUNT

from pipex.core.outcomes import Outcome
from pipex.core.plan import Plan
from pipex.executors.ahead import in_turn
from pipex.executors.batches import ThreadPool, run_batches


class Observer(Protocol):
    """Told each task's outcome as it arrives (:class:`pipex.running.Observers`)."""

    def record(self, key: str, outcome: Any) -> None: ...


class Executor(abc.ABC):
    """Runs plans (one or several batches of one :func:`pipex.compute`), then is closed."""

    #: The scheduler options this executor takes (keywords of :func:`pipex.compute`).
    OPTIONS: frozenset[str] = frozenset()
    #: Whether :meth:`execute` honours ``plan.defer`` (its tasks' outcomes, ``Claimed``
    #: included, come back from the workers as they are): then a target another runner
    #: claimed does not hold a worker; the run comes back to it (:mod:`pipex.running.claimed`).
    defers_claims: bool = False

    def check(self, options: Mapping[str, Any]) -> None:
        """Refuse options this executor does not take, before it runs anything."""
        unknown = sorted(set(options) - self.OPTIONS)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} does not take the scheduler option(s) "
                f"{', '.join(unknown)}; it takes {', '.join(sorted(self.OPTIONS)) or 'none'}"
            )

    @abc.abstractmethod
    def execute(
        self, plan: Plan, observer: Observer, keep_going: bool, **options: Any
    ) -> dict[str, Outcome]:
        """Run ``plan.missing``; the outcome of each node, by key.

        Every outcome is also reported to ``observer`` as it arrives. With ``keep_going``
        false, the first failure is raised as it is. ``options`` go to the scheduler.
        """

    def execute_batches(
        self,
        batches: Iterable[Plan],
        execute: Callable[[Plan], dict[str, Outcome]],
        keep_going: bool,
    ) -> Iterator[dict[str, Outcome]]:
        """Each batch's outcomes, in the batches' order, as ``execute`` (the run's
        :meth:`execute`, with its observers) gives them. The caller adds each batch's
        outcomes to those the later batches read before it asks for the next.

        One batch after the other; an executor may run the next while the current one runs
        (:func:`pipex.executors.ahead.ahead`).
        """
        return in_turn(batches, execute)

    def items(
        self,
        plan: Plan,
        shared: Mapping[str, Outcome],
        observer: Observer,
        keep_going: bool,
        **options: Any,
    ) -> None:
        """Run the items of the plan's mapped steps that must run, in batches; each batch's
        outcomes go to ``observer`` in one message. ``shared`` holds the outcomes of the
        plain nodes the mapped steps read (run before)."""
        with self.pool(options) as pool:
            run_batches(plan, shared, pool, observer, keep_going, self.defers_claims)

    def pool(self, options: Mapping[str, Any]) -> contextlib.AbstractContextManager[Any]:
        """Where this executor runs batches (:class:`~pipex.executors.batches.Pool`):
        threads of this process unless it says otherwise."""
        return ThreadPool(options.get("num_workers") or CPU_COUNT)

    def concurrent(
        self, options: Mapping[str, Any]
    ) -> contextlib.AbstractContextManager[dict[str, Any] | None]:
        """The options for :meth:`execute` calls made at once from several threads (the
        sub-runs of ``pipex.expand``), or ``None`` if this executor runs one plan at a time."""
        return contextlib.nullcontext(None)

    def close(self) -> None:  # noqa: B027 - most executors open nothing
        """Release what the executor opened for the run (a client it connected, say)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
