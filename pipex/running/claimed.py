"""Targets another runner claimed: the run goes on with the rest and comes back to them.

One mechanism for every executor that honours ``Plan.defer`` (``Executor.defers_claims``):
:func:`execute` runs a plan with ``defer`` set, so that a worker call that finds its target
claimed by another live runner returns :class:`~pipex.core.outcomes.Claimed` at once
(and so does every call below it) instead of holding a worker thread in a wait. Observers
never hear of those. Once the plan's run ends, the claimed targets are looked at again
from here (the client): those the other runner wrote are :class:`Waited` for; as soon as
one is written, released or expired (its owner died, or is stopped past the timeout), the
claimed nodes left run again as one plan, with ``defer`` again; while every one is held by
a live runner, this waits, saying every :data:`~pipex.stores.claims.SAY_EVERY` seconds what
for (how many targets, their owners' host, process, state and heartbeat, since when).
"""

from __future__ import annotations

import logging
import time
from collections import ChainMap
from collections.abc import Mapping, Sequence
from typing import Any

from pipex.core.outcomes import Claimed, Found, Outcome, Waited
from pipex.core.plan import Plan
from pipex.stores import claims
from pipex.stores.owners import described, expired

logger = logging.getLogger(__name__)


def execute(
    executor: Any, plan: Plan, observer: Any, keep_going: bool, options: Mapping[str, Any]
) -> dict[str, Outcome]:
    """Run ``plan`` on ``executor`` as :meth:`Executor.execute` does (every outcome to
    ``observer``), coming back to the targets other runners claimed until each has its
    outcome: the outcome of every missing node, by key."""
    if not getattr(executor, "defers_claims", False) or not plan.missing:
        return executor.execute(plan, observer, keep_going, **options)  # type: ignore[no-any-return]
    return _Rounds(executor, observer, keep_going, options).run(plan)


class _Holding:
    """The observer of one round: passes on every outcome but :class:`Claimed` (with the
    timing told before it), and tells a target found written, in a round that came back to
    it, as :class:`Waited` (another runner wrote it)."""

    def __init__(self, observer: Any, again: set[str]) -> None:
        self.observer = observer
        self.again = again
        self.timings: dict[str, tuple[float, float, str]] = {}
        if hasattr(observer, "planned"):
            self.planned = observer.planned

    def record(self, key: str, outcome: Any) -> None:
        timing = self.timings.pop(key, None)
        if type(outcome) is Claimed:
            return
        if timing is not None and hasattr(self.observer, "timing"):
            self.observer.timing(key, *timing)
        self.observer.record(key, waited(key, outcome, self.again))

    def timing(self, key: str, started: float, duration: float, worker: str) -> None:
        self.timings[key] = (started, duration, worker)


def waited(key: str, outcome: Any, again: set[str]) -> Any:
    """``outcome``, or :class:`Waited` for a target found written by a node this run came
    back to (a target another runner wrote, not one of an earlier attempt)."""
    if type(outcome) is Found and key in again:
        return Waited(outcome.path, outcome.store)
    return outcome


class _Rounds:
    """Runs a plan again and again, each time with the nodes that came back claimed."""

    def __init__(
        self, executor: Any, observer: Any, keep_going: bool, options: Mapping[str, Any]
    ) -> None:
        self.executor = executor
        self.observer = observer
        self.keep_going = keep_going
        self.options = options
        self.again: set[str] = set()
        self.rewrites: set[str] = set()

    def run(self, plan: Plan) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        done = ChainMap(outcomes, plan.done)  # type: ignore[arg-type]
        pending = plan.missing
        self.rewrites = plan.rewrites
        pause = claims.POLL_FIRST
        while True:
            step = Plan(
                roots=plan.roots if pending is plan.missing else [],
                done=done,  # type: ignore[arg-type]
                missing=pending,
                rewrites=plan.rewrites,
                defer=True,
            )
            got = self.executor.execute(
                step, _Holding(self.observer, self.again), self.keep_going, **self.options
            )
            held: dict[str, Claimed] = {}
            for key, outcome in got.items():
                if type(outcome) is Claimed:
                    held[key] = outcome
                else:
                    outcomes[key] = waited(key, outcome, self.again)
            if not held:
                return outcomes
            self.again.update(held)
            nodes = list({node.key: node for node in pending if node.key in held}.values())
            heads = [node for node in nodes if held[node.key].owner is not None]
            written = self._wait(heads)
            for node, target in written:
                outcomes[node.key] = target
                self.observer.record(node.key, target)
            pending = [node for node in nodes if node.key not in outcomes]
            if not pending:
                return outcomes
            if len(held) == len(got) and not written:  # no progress: a claim the workers
                time.sleep(pause)  # still see held (another host's view), say
                pause = min(pause * 1.5, claims.POLL_LONGEST)
            else:
                pause = claims.POLL_FIRST

    def _wait(self, heads: Sequence[Any]) -> list[tuple[Any, Waited]]:
        """Wait until a claimed target in ``heads`` is written, released or expired: the
        written ones, as :class:`Waited`."""
        seconds = claims.timeout()
        since = said = time.monotonic()
        pause = claims.POLL_FIRST
        while True:
            written: list[tuple[Any, Waited]] = []
            live: list[tuple[Any, tuple[str, float]]] = []
            free = False
            for node in heads:
                target = node.target
                holder = target.store.claim_holder(target.path)
                if holder is not None and not expired(holder, seconds):
                    live.append((node, holder))
                elif node.key not in self.rewrites and target.store.exists(target.path):
                    written.append((node, Waited(target.path, target.store)))
                else:
                    free = True  # released without its target (failed), or expired
            if written or free or not live:
                return written
            now = time.monotonic()
            if now - said >= claims.SAY_EVERY:
                said = now
                logger.warning("%s", _waiting(live, now - since))
            time.sleep(pause)
            pause = min(pause * 1.5, claims.POLL_LONGEST, seconds / 4)


def _waiting(live: Sequence[tuple[Any, tuple[str, float]]], seconds: float) -> str:
    """What a runner waits for: how many targets, by whom, since when."""
    by_owner: dict[str, list[Any]] = {}
    holders: dict[str, tuple[str, float]] = {}
    for node, holder in live:
        by_owner.setdefault(holder[0], []).append(node)
        holders[holder[0]] = holder
    owners = "; ".join(
        f"{described(holders[owner])}: {len(nodes)} target(s), e.g. {nodes[0].target}"
        for owner, nodes in by_owner.items()
    )
    started = time.strftime("%H:%M:%S", time.localtime(time.time() - seconds))
    return (
        f"pipex: waiting for {len(live)} target(s) claimed by another runner, since "
        f"{started} ({seconds:.0f} s): {owners}. No other task of this batch is ready; a "
        "stopped or dead runner's claims are taken over once its heartbeat is older than "
        "pipex.claims.timeout."
    )
