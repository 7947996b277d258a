"""Expansions as they stream: each runs once its node's target arrives, beside the rest.

:class:`Expanding` first finishes, from their records alone, the expansions whose node is
done and whose recorded targets all exist (no output loaded, no ``fn`` called, no scheduler).
During the run it watches the outcomes: when an expansion's node writes its target (or was
done), a thread of its own loads that output, calls ``fn``, resolves the returned nodes and
runs the missing ones through the same executor, while the run that produced the node goes
on (no barrier between stages). Executors that run one plan at a time (Prefect, dask's
processes) run the expansions after the first stage instead, one after another. Every
outcome reaches the same observers (one progress bar, one report, one ledger); an
expansion's own failure (its node's output unreadable, ``fn`` raising or returning other
things than nodes) is reported as a failure under the expansion's key.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pipex import settings
from pipex.core.outcomes import Failure, Outcome
from pipex.core.plan import Plan, exists_many, refuse_collision, resolve
from pipex.core.targets import Target
from pipex.exceptions import StoreError, TargetCollisionError
from pipex.expand import Expansion, targets_in
from pipex.node import Node
from pipex.running import claimed, staleness

#: At most this many expansions run at once (each waits on its run from a thread).
AT_ONCE = 8


class Expanding:
    """The expansions of one :func:`pipex.compute` call: their sources, results and counts.

    ``results`` maps each finished expansion's key to what its ``fn`` returned with Targets
    for nodes; ``outcomes`` holds the outcomes of the nodes its runs ran; ``requested`` and
    ``done`` count the produced nodes, and those found already done.
    """

    def __init__(self, expansions: Iterable[Expansion]) -> None:
        self.expansions = {e.key: e for e in expansions}
        self.results: dict[str, Any] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.requested = 0
        self.done = 0
        self.waiting: dict[str, list[Expansion]] = {}  # node key -> expansions of that node
        self.ready: list[tuple[Expansion, Target]] = []  # node done, record not enough
        self.graph: Plan | None = None  # the plan of the run's first stage
        #: By target: the call that renders it (a node, or a recorded token of its call)
        #: and the expansion that returned it (``None``: the graph).
        self.claims: dict[tuple[Any, str], tuple[Node | str, Expansion | None]] | None = None
        self.recorded: list[tuple[Expansion, Any, Mapping[str, str]]] = []  # finished early
        self.spoiled: set[str] = set()  # expansions in a collision: they keep no record

    @property
    def sources(self) -> list[Any]:
        """The nodes the expansions expand."""
        return [e.node for e in self.expansions.values()]

    @property
    def pending(self) -> bool:
        """Whether some expansion still has to run."""
        return bool(self.ready or self.waiting)

    def check(self, graph: Plan) -> None:
        """Finish the expansions whose node is done in ``graph`` (the plan of the run's first
        stage) and whose recorded targets all exist; the others are ready (node done) or wait
        for their node's outcome.

        With a staleness opt-in in play (``pipex.rerun: code``, or a ``version`` on a
        produced task when it was recorded), records are not enough: the produced nodes
        are resolved again, with the opt-in's check.
        """
        self.graph = graph
        if not self.expansions:
            return
        done = graph.done
        known = [e for e in self.expansions.values() if e.node.key in done]
        for e in self.expansions.values():
            if e.node.key not in done:
                self.waiting.setdefault(e.node.key, []).append(e)
        trusted = not staleness.rerun_code()
        has_record = exists_many([e.record for e in known]) if trusted else [False] * len(known)
        found = []
        for e, ok in zip(known, has_record, strict=True):
            record = e.recorded() if ok else None
            plain = record is not None and not record.get("versioned")
            found.append((e, record if plain else None))
        listed = [targets_in(record["result"]) if record else [] for _, record in found]
        exists = iter(exists_many([t for targets in listed for t in targets]))
        for (e, record), targets in zip(found, listed, strict=True):
            complete = [next(exists) for _ in targets]
            if record is not None and all(complete):
                self.results[e.key] = result = record["result"]
                self.requested += len(targets)
                self.done += len(targets)
                calls = record.get("calls")
                if isinstance(calls, dict):
                    self.recorded.append((e, result, calls))
            else:
                self.ready.append((e, done[e.node.key]))

    def claim(self, expansion: Expansion, plan: Plan) -> None:
        """Take the targets of the calls an expansion's resolution met (its nodes, and the
        inputs of those to run): a :class:`TargetCollisionError` if one is the target of a
        different call of this run, of the graph or of another expansion. The expansions in
        a collision keep no record, so that the next run finds it again. Not thread-safe."""
        if self.claims is None:
            self.claims = {}
            for finished, result, calls in self.recorded:  # the calls of earlier runs
                for target in targets_in(result):
                    if target.path in calls:
                        ident = (target.store, target.path)
                        self.claims.setdefault(ident, (calls[target.path], finished))
            if self.graph is not None:
                self._take(_met(self.graph), None)
        self._take(_met(plan), expansion)

    def _take(self, nodes: Iterable[Node], by: Expansion | None) -> None:
        claims = self.claims
        assert claims is not None
        for node in nodes:
            target = node.target
            seen, first = claims.setdefault((target.store, target.path), (node, by))
            if seen is node:
                continue
            earlier = isinstance(seen, str)
            try:
                refuse_collision(seen, node, _returned(first, earlier), _returned(by))
            except TargetCollisionError:
                for spoiled in (first, by):
                    if spoiled is not None:
                        self.spoiled.add(spoiled.key)
                        spoiled.record.store.delete(spoiled.record.path)
                raise

    def streaming(
        self, executor: Any, observer: Any, keep_going: bool, options: Mapping[str, Any]
    ) -> _Stream:
        """A context whose value runs a plan (the first stage) and which, on leaving, has run
        every expansion its outcomes made ready."""
        return _Stream(self, executor, observer, keep_going, options)


class _Stream:
    """One run with expansions: an observer of every outcome that starts the expansions."""

    def __init__(
        self,
        expanding: Expanding,
        executor: Any,
        observer: Any,
        keep_going: bool,
        options: Mapping[str, Any],
    ) -> None:
        self.expanding = expanding
        self.executor = executor
        self.observer = observer
        self.keep_going = keep_going
        self.options = dict(options)
        self.lock = threading.RLock()  # observers hear one outcome at a time
        self.futures: list[Future[None]] = []
        self.pool: ThreadPoolExecutor | None = None
        self.shared: Any = None

    def __enter__(self) -> Callable[[Plan], dict[str, Outcome]]:
        if not self.expanding.pending:
            return self._execute
        self.shared = self.executor.concurrent(self.options)
        concurrent = self.shared.__enter__()
        if concurrent is not None:
            self.options = concurrent
            self.pool = ThreadPoolExecutor(AT_ONCE, thread_name_prefix="pipex-expand")
            ready, self.expanding.ready = self.expanding.ready, []
            for expansion, target in ready:
                self._start(expansion, target)
        return self._execute

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self.shared is None:
            return
        try:
            if kind is None:
                self._finish()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
            self.shared.__exit__(kind, exc, tb)

    def _execute(self, plan: Plan) -> dict[str, Outcome]:
        return claimed.execute(self.executor, plan, self, self.keep_going, self.options)

    # The observer the executors report to.

    def record(self, key: str, outcome: Any) -> None:
        with self.lock:
            self.observer.record(key, outcome)
            waiting = self.expanding.waiting.pop(key, None)
        if waiting and isinstance(outcome, Target):
            for expansion in waiting:
                self._start(expansion, outcome)

    def timing(self, key: str, started: float, duration: float, worker: str) -> None:
        with self.lock:
            self.observer.timing(key, started, duration, worker)

    def planned(self, nodes: Any) -> None:
        with self.lock:
            self.observer.planned(nodes)

    # Running the expansions.

    def _start(self, expansion: Expansion, target: Target) -> None:
        if self.pool is None:
            self.expanding.ready.append((expansion, target))
        else:
            with self.lock:
                self.futures.append(self.pool.submit(self._expand, expansion, target))

    def _finish(self) -> None:
        """Wait for every expansion (those started by expansions too); raise the first error."""
        errors: list[BaseException] = []
        while True:
            with self.lock:
                if self.futures:
                    future = self.futures.pop(0)
                elif self.expanding.ready:
                    future = None
                    expansion, target = self.expanding.ready.pop(0)
                else:
                    break
            if future is None:
                try:
                    self._expand(expansion, target)
                except BaseException as exc:
                    errors.append(exc)
            elif future.exception() is not None:
                errors.append(future.exception())  # type: ignore[arg-type]
        if errors:
            raise errors[0]

    def _expand(self, expansion: Expansion, target: Target) -> None:
        """Load the node's output, call ``fn``, run the missing nodes it returned; record
        what it produced once every one of them has its target."""
        try:
            produced, nodes = expansion.produce(_load(expansion, target))
            plan = resolve(nodes, stale=staleness.check(nodes))
            with self.lock:
                self.expanding.claim(expansion, plan)
            outcomes: dict[str, Outcome] = {}
            if plan.missing:
                self.planned(plan.missing)
                for batch in plan.batches(int(settings.get("batch-size")), outcomes):
                    outcomes.update(self._execute(batch))
            keys = {node.key for node in nodes}
            with self.lock:
                self.expanding.outcomes.update(outcomes)
                self.expanding.requested += len(keys)
                self.expanding.done += sum(key in plan.done for key in keys)
            if all(isinstance(outcomes.get(k, plan.done.get(k)), Target) for k in keys):
                result = expansion.keep(produced, nodes)
                with self.lock:
                    if expansion.key in self.expanding.spoiled:  # met in a collision since
                        expansion.record.store.delete(expansion.record.path)
                    else:
                        self.expanding.results[expansion.key] = result
        except TargetCollisionError:  # a mistake in the pipeline, not a task's failure
            raise
        except (Exception, SystemExit) as exc:
            if not self.keep_going:
                exc.add_note(f"{expansion.key} failed: its nodes did not all run")
                raise
            node = expansion.node
            self.record(expansion.key, Failure(expansion.key, node.target, exc, _trace(exc)))


def _met(plan: Plan) -> Iterator[Node]:
    """The nodes resolution met: the plan's roots, and the inputs of its missing nodes."""
    yield from plan.roots
    for node in plan.missing:
        yield from node.deps


def _returned(by: Expansion | None, earlier: bool = False) -> str:
    if by is None:
        return ""
    return f" (returned by {by.key}{' on an earlier run' if earlier else ''})"


def _load(expansion: Expansion, target: Target) -> Any:
    try:
        return target.load()
    except Exception as exc:
        raise StoreError(
            f"{expansion.key} cannot read the output of {expansion.node.key} from {target}: "
            f"{type(exc).__name__}: {exc}. If that file is damaged, delete it and rerun: "
            "the task runs again, then the expansion."
        ) from exc


def _trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
