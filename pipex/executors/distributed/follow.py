"""Following a run's futures on a cluster as they finish: each task's outcome reported as it
arrives, the client holding no task's data.

A task that wrote its target returns that small :class:`Target`, which the scheduler's type
of the result tells without fetching it; a failure is fetched with its traceback; a task lost
with its worker (``KilledWorker``) is that task's failure; the dependants of a failed task are
reported not run once their inputs' outcomes are known. A task of several chains (a bundle)
that is lost as a whole is not its chains' failure: their steps not written are held
(:attr:`Follow.held`), with the tasks that read them, for the executor to run again, each
chain in a task of its own (:meth:`Follow.again`), so that one chain that kills its worker
fails alone.
"""

from __future__ import annotations

import time
import traceback
from collections import ChainMap
from collections.abc import Mapping, Sequence
from typing import Any

from distributed import as_completed

from pipex.core import fusion
from pipex.core.outcomes import Failure, NotRun, Outcome, settle, unmark_raised
from pipex.core.plan import Plan, exists_many
from pipex.core.targets import Target
from pipex.exceptions import PipexError
from pipex.executors.base import Observer
from pipex.executors.distributed.sealing import Unreachable, unreachable
from pipex.executors.distributed.stream import TaskStream


class Follow:
    """Collects each task's outcome as it finishes, reporting it to the observer.

    dask marks every dependant of a failed task as failed with the same exception; pipex
    reports only the task that failed, and its dependants as not run (:func:`settle`), once
    the outcomes of their inputs are known. ``steps`` maps dask keys to the nodes each task
    runs (one, or a fused chain's).
    """

    def __init__(
        self, client: Any, steps: Mapping[Any, Sequence[Any]], plan: Plan, observer: Observer
    ) -> None:
        self.client = client
        self.steps = steps
        self.observer = observer
        self.missing = {node.key for node in plan.missing}
        self.position = {node.key: i for i, node in enumerate(plan.order())}
        self.outcomes: dict[str, Outcome] = {}
        self.erred: dict[str, Any] = {}  # erred nodes whose inputs' outcomes are not all known
        self.held: list[Any] = []  # nodes of lost bundles, and their users: to run again
        self.timing = getattr(observer, "timing", None)
        self.stream = TaskStream(client, steps) if self.timing is not None else None
        self.begun = time.time()

    def run(self, futures: list[Any], keep_going: bool) -> dict[str, Outcome]:
        client = self.client
        pending = {future.key: future for future in futures}
        try:
            for batch in as_completed(futures, loop=client.loop).batches():
                timings = self.stream.timings([f.key for f in batch]) if self.stream else {}
                finished = [f for f in batch if f.status == "finished"]
                ended = {f.key for f in finished}
                # A task that wrote its target (every target of a fused chain) returns that
                # Target, which the client already has: the type the scheduler reported says
                # so, and nothing is fetched. Only failure records (and anything the type
                # does not tell) are gathered.
                fetch = [f for f in finished if f.type is not Target]
                results = dict(zip(fetch, client.gather(fetch) if fetch else [], strict=True))
                for future in finished:
                    nodes = self.steps[future.key]
                    result = results.get(future, nodes[-1].target)
                    timing = timings.get(future.key)
                    # a fused chain that wrote every target returns its last Target only
                    # (nothing to fetch): its steps share the chain's timing
                    for node, outcome, own in fusion.outcomes(nodes, result):
                        if timing is not None and self.timing is not None:
                            started, duration = self._within(*(own or timing[:2]))
                            self.timing(node.key, started, duration, timing[2])
                        self._record(node.key, outcome)
                for future in batch:
                    if future.key in ended:  # read once: a status may change meanwhile
                        continue
                    if future.status == "cancelled" and client.status != "running":
                        raise self._scheduler_gone()
                    nodes = self.steps[future.key]
                    if future.status not in ("error", "cancelled"):
                        # it finished, then its result was lost with its worker (it is
                        # "lost" or "pending" again): what it wrote stays, the rest reruns
                        self._hold(nodes)
                        continue
                    timing = timings.get(future.key)
                    if timing is not None and self.timing is not None and len(nodes) == 1:
                        self.timing(nodes[0].key, *self._within(*timing[:2]), timing[2])
                    if not keep_going:
                        if isinstance(future.exception(), Unreachable):
                            raise unreachable(future.exception(), nodes[0]) from None
                        future.result()  # raises the task's exception
                        raise RuntimeError(f"pipex task {nodes[-1].key}: {future.status}")
                    if fusion.several(nodes):
                        self._hold(nodes)
                    else:
                        self._erred(nodes, failure(future, nodes[0]))
                self._settle(final=False)
                for future in batch:
                    pending.pop(future.key, None)
                    future.release()
        except BaseException:
            if pending:
                client.cancel(list(pending.values()))
            raise
        self._settle(final=True)
        return self.outcomes

    def _within(self, started: float, duration: float) -> tuple[float, float]:
        """A task's start and duration kept inside what this client saw: after the run
        began, ended by now. The scheduler shifts each worker's times by an estimate of
        that worker's clock offset, which can put a task a few milliseconds outside."""
        now = time.time()
        duration = max(0.0, min(duration, now - self.begun))
        return min(max(started, self.begun), now - duration), duration

    def _scheduler_gone(self) -> PipexError:
        """The run cannot go on: the client lost its scheduler (and with it every future)."""
        saved = sum(1 for outcome in self.outcomes.values() if isinstance(outcome, Target))
        left = len(self.missing) - len(self.outcomes)
        address = getattr(self.client.scheduler, "address", None) or "its address"
        return PipexError(
            f"the dask scheduler at {address} went away during the run (the client lost its "
            f"connection; status {self.client.status!r}): {saved} pipex task(s) had finished "
            f"and saved their targets, {left} had not finished or not started. Nothing saved "
            "is lost: once the scheduler is back (or with another cluster), rerun and only "
            "those run."
        )

    def _record(self, key: str, outcome: Outcome) -> None:
        self.outcomes[key] = outcome
        self.observer.record(key, outcome)

    def _erred(self, nodes: Sequence[Any], failure: Failure | NotRun) -> None:
        """A task that erred on the cluster: of a fused chain, the steps that wrote their
        targets before it ran; the first other step failed, the rest did not run."""
        if len(nodes) == 1:
            self.erred[nodes[0].key] = nodes[0], failure
            return
        written = exists_many([node.target for node in nodes])
        for node, outcome in zip(nodes, fusion.lost(nodes, failure, written), strict=True):
            if isinstance(outcome, Target):
                self._record(node.key, outcome)
            else:
                self.erred[node.key] = node, outcome

    def again(self, plan: Plan) -> Plan | None:
        """The :attr:`held` nodes of ``plan`` as a plan of their own (their inputs' outcomes
        from this run as done), or ``None`` if none is held."""
        if not self.held:
            return None
        done: Any = ChainMap(self.outcomes, plan.done)  # type: ignore[arg-type]
        return Plan(
            roots=[], done=done, missing=self.held, rewrites=plan.rewrites, defer=plan.defer
        )

    def _hold(self, nodes: Sequence[Any]) -> None:
        """A lost task of several chains: the steps that wrote their targets ran; the others
        are held, to run again."""
        written = exists_many([node.target for node in nodes])
        for node, ok in zip(nodes, written, strict=True):
            if ok:
                self._record(node.key, node.target)
            else:
                self.held.append(node)

    def _settle(self, final: bool) -> None:
        """Give outcomes to the erred nodes whose inputs' outcomes are known (all if final:
        but those that read held nodes are held too)."""
        if final and self.held:
            held = {node.key for node in self.held}
            for node in sorted(
                (node for node, _ in self.erred.values()), key=lambda n: self.position[n.key]
            ):
                if any(dep.key in held for dep in node.deps):
                    held.add(node.key)
                    self.held.append(self.erred.pop(node.key)[0])
        known = self.outcomes
        ready = sorted(
            (
                node
                for node, _ in self.erred.values()
                if final or all(d.key in known or d.key not in self.missing for d in node.deps)
            ),
            key=lambda node: self.position[node.key],
        )
        failures = {node.key: self.erred.pop(node.key)[1] for node in ready}
        settle(ready, known, failures)
        for node in ready:
            self.observer.record(node.key, known[node.key])


def failure(future: Any, node: Any) -> Failure | NotRun:
    """The failure of a task that erred on the cluster, with its traceback as text."""
    if future.status == "cancelled":
        exc: BaseException = RuntimeError(
            f"pipex task {node.key} was cancelled on the cluster before it finished"
        )
        return Failure(node.key, node.target, exc, f"{type(exc).__name__}: {exc}\n")
    exc = unreachable(future.exception(), node)
    tb = future.traceback()
    unmark_raised(exc)  # execute_call's note for a raised failure; the report adds its own
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return Failure(node.key, node.target, exc.with_traceback(None), text)
