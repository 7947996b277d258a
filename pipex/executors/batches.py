"""Feeding a pool with the batches of a plan's mapped steps, a few in flight per worker.

The scheduler holds batches, never calls: at most :data:`IN_FLIGHT` batches per worker
thread are submitted at a time, each cut when it is submitted (so memory stays flat at any
number of items), sized by :class:`~pipex.core.batching.Sizer` from the batches that
finished. Each finished batch is reported to the observers in one message
(:func:`report`); a batch lost as a whole (its worker died) fails each of its items.
"""

from __future__ import annotations

import logging
import time
import traceback
from array import array
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from pipex import settings
from pipex.core.batch import Batch, BatchResult, outcomes, run_batch
from pipex.core.batching import Sizer, cut, groups
from pipex.core.outcomes import Claimed, Failure, NotRun, Outcome, failed_inputs
from pipex.core.plan import Plan
from pipex.core.targets import Target
from pipex.stores import claims
from pipex.stores.owners import expired

logger = logging.getLogger("pipex")

#: Batches in flight per worker thread.
IN_FLIGHT = 2


class Pool(Protocol):
    """Where batches run (an executor's threads or cluster)."""

    workers: int

    def submit(self, batch: Batch, keep_going: bool) -> Any: ...

    def wait(self, handles: list[Any]) -> list[Any]:
        """Some of ``handles`` that finished (at least one), once they have."""

    def result(self, handle: Any) -> BatchResult: ...


def batch_size() -> int | None:
    """The setting ``pipex.map.batch-size``: a number of items, or ``None`` for ``auto``."""
    value = settings.get("map.batch-size")
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"setting pipex.map.batch-size is {value!r}; set it to 'auto' or a number of "
            "items per batch"
        ) from None
    if size < 1:
        raise ValueError(f"setting pipex.map.batch-size is {size}; it must be 1 or more")
    return size


def run_batches(
    plan: Plan,
    shared: Mapping[str, Outcome],
    pool: Pool,
    observer: Any,
    keep_going: bool,
    defer: bool = False,
) -> None:
    """Run every item of the plan's mapped steps that must run, in batches on ``pool``.

    ``shared`` holds the outcomes of the plain nodes the mapped steps share (by key). With
    ``defer``, an item whose target another runner claimed comes back
    :class:`~pipex.core.outcomes.Claimed` instead of holding a thread in a wait: it is not
    reported, and once the other runner wrote, released or lost the claim, the claimed
    items run again (:func:`pipex.running.claimed` does the same for plain nodes).
    """
    states = plan.families
    pause = claims.POLL_FIRST
    while True:
        held = _round(states, shared, pool, observer, keep_going, defer)
        if not held:
            return
        waiting(held)
        states = {}
        for family, indices in held.items():
            again = states[family] = bytearray(b"\x01" * len(family))
            for i in indices:
                again[i] = plan.families[family][i]
        time.sleep(pause)
        pause = min(pause * 1.5, claims.POLL_LONGEST)


def _round(
    states: Mapping[Any, bytearray],
    shared: Mapping[str, Outcome],
    pool: Pool,
    observer: Any,
    keep_going: bool,
    defer: bool,
) -> dict[Any, list[int]]:
    """One pass over the items to run; the claimed ones by family (with ``defer``)."""
    work = groups(states)
    held: dict[Any, list[int]] = {}
    if not work:
        return held
    sizer = Sizer(batch_size(), pool.workers, sum(len(g) for g in work))
    limit = max(1, pool.workers * IN_FLIGHT)
    pending: dict[Any, Batch] = {}

    def finish(handles: Iterable[Any]) -> None:
        for handle in handles:
            batch = pending.pop(handle)
            try:
                result = pool.result(handle)
            except Exception as exc:
                if not keep_going:
                    raise
                result = lost(batch, exc, traceback.format_exc())
            else:
                sizer.learn(batch.size, result.seconds)
            if defer:
                _withhold(batch, result, held)
            report(observer, batch, result)

    try:
        for group in work:
            for items in cut(group, sizer):
                while len(pending) >= limit:
                    finish(pool.wait(list(pending)))
                batch = group.batch(items, shared, defer)
                pending[pool.submit(batch, keep_going)] = batch
        while pending:
            finish(pool.wait(list(pending)))
    finally:
        for handle in pending:
            cancel = getattr(handle, "cancel", None)
            if cancel is not None:
                cancel()
    return held


def _withhold(batch: Batch, result: BatchResult, held: dict[Any, list[int]]) -> None:
    """Take the claimed items out of ``result`` (never reported) into ``held``."""
    kept = []
    for s, position, outcome in result.outcomes:
        if type(outcome) is Claimed:
            held.setdefault(batch.families[s], []).append(batch.items[position])
        else:
            kept.append((s, position, outcome))
    result.outcomes = kept


def waiting(held: Mapping[Any, list[int]]) -> None:
    """Wait until one of the claimed items' targets is written, released or expired."""
    seconds = claims.timeout()
    since = said = time.monotonic()
    pause = claims.POLL_FIRST
    while True:
        for family, indices in held.items():
            for i in indices:
                target = family.target(i)
                holder = target.store.claim_holder(target.path)
                if holder is None or expired(holder, seconds):
                    return
        now = time.monotonic()
        if now - said >= claims.SAY_EVERY:
            said = now
            count = sum(map(len, held.values()))
            logger.warning(
                "pipex: waiting for %d item(s) of mapped steps claimed by another runner "
                "(%.0f s); a dead runner's claims are taken over once its heartbeat is older "
                "than pipex.claims.timeout.",
                count,
                now - since,
            )
        time.sleep(pause)
        pause = min(pause * 1.5, claims.POLL_LONGEST, seconds / 4)


def report(observer: Any, batch: Batch, result: BatchResult) -> None:
    """Tell ``observer`` a batch's outcomes: in one message to one that takes batches
    (``batch(batch, result)``), else item by item."""
    take = getattr(observer, "batch", None)
    if take is not None:
        take(batch, result)
        return
    for key, outcome in outcomes(batch, result):
        observer.record(key, outcome)


def lost(batch: Batch, exc: BaseException, text: str) -> BatchResult:
    """The result of a batch that failed as a whole: each item's first step to run failed,
    the steps of the same item after it did not run."""
    size = batch.size
    result = BatchResult(
        [0] * len(batch.steps),
        [array("d", bytes(8 * size)) for _ in batch.steps],
        [array("d", bytes(8 * size)) for _ in batch.steps],
    )
    for position in range(size):
        failed: list[Outcome] = []
        for s, step in enumerate(batch.steps):
            if not step.states[position]:
                continue
            path = step.paths[position]
            target = Target(path, step.store)
            causes = failed_inputs(failed)
            outcome: Outcome = (
                NotRun(step.key(path), target, causes)
                if causes
                else Failure(step.key(path), target, exc, text)
            )
            failed.append(outcome)
            result.outcomes.append((s, position, outcome))
    return result


class ThreadPool:
    """Batches on a pool of threads in this process (dask's threads, by default), or run at
    once in the calling thread (``workers=0``: dask's ``sync`` scheduler)."""

    def __init__(self, workers: int, pool: Any = None) -> None:
        self.inline = workers == 0
        self.workers = max(1, workers)
        self.owned = pool is None and not self.inline
        self.pool = pool
        if self.owned:
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="pipex-batch")

    def submit(self, batch: Batch, keep_going: bool) -> Future[BatchResult]:
        if not self.inline:
            return self.pool.submit(run_batch, batch, keep_going)
        future: Future[BatchResult] = Future()
        try:
            future.set_result(run_batch(batch, keep_going))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def wait(self, handles: list[Any]) -> list[Any]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return [h for h in handles if h in done]

    def result(self, handle: Any) -> BatchResult:
        return handle.result()

    def close(self) -> None:
        if self.owned and self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ThreadPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
