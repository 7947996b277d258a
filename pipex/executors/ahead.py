"""A run's batches shipped ahead: the next batch planned and sent while the current one runs.

A run's missing nodes come in batches (:meth:`pipex.core.plan.Plan.batches`). Where a batch
takes long to start (its graph built, sent and taken in by the scheduler, a Prefect task run
begun) and to end (its last outcomes, its task run recorded), running batches one after the
other leaves the cluster idle in between. :func:`ahead` runs each batch in a thread of its
own, up to ``depth`` at once: the next batch is planned and sent while the current one
runs, unless it reads an outcome of a batch still running (a shared input placed in an
earlier batch), which then ends first. Observers hear each outcome as it arrives, from
whichever batch; the caller gets each batch's outcomes in the batches' order.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future

from pipex.core.outcomes import Outcome
from pipex.core.plan import Plan

#: Batches in flight at once: the one running and the next one, sent.
DEPTH = 2

Execute = Callable[[Plan], dict[str, Outcome]]


def in_turn(batches: Iterable[Plan], execute: Execute) -> Iterator[dict[str, Outcome]]:
    """Each batch's outcomes, the batches run one after the other."""
    for batch in batches:
        yield execute(batch)


def ahead(
    batches: Iterable[Plan], execute: Execute, depth: int = DEPTH
) -> Iterator[dict[str, Outcome]]:
    """Each batch's outcomes, in the batches' order; up to ``depth`` batches run at once,
    each by ``execute`` in a thread with the caller's context (Prefect's flow run, pipex's
    template variables).

    The next batch is taken from ``batches`` (planned) while the ones before it run; it is
    started once fewer than ``depth`` run and none that runs holds one of its inputs. The
    caller fills the outcomes later batches read (``Plan.batches``' ``finished``) with what
    this yields before the next batch starts. A run of one batch runs it in the caller's
    thread. If a batch raises, the ones still running finish (their outcomes reach the
    observers) and the error is raised; on an interrupt, they are left to end on their own
    (daemon threads: the process does not wait for them).
    """
    given = iter(batches)
    first = next(given, None)
    second = None if first is None else next(given, None)
    if first is None or second is None:  # one batch (or none): run here, as it comes
        yield from in_turn([first] if first is not None else [], execute)
        return
    running: deque[tuple[frozenset[str], Future[dict[str, Outcome]]]] = deque()
    interrupted = False
    try:
        for batch in itertools.chain([first, second], given):
            needs = {dep.key for node in batch.missing for dep in node.deps}
            while running and (len(running) >= depth or any(needs & k for k, _ in running)):
                yield running.popleft()[1].result()
            keys = frozenset(node.key for node in batch.missing)
            running.append((keys, _started(execute, batch)))
        while running:
            yield running.popleft()[1].result()
    except BaseException as exc:
        interrupted = not isinstance(exc, (Exception, GeneratorExit))
        raise
    finally:
        if not interrupted:
            for _, future in running:
                future.exception()  # finished: its outcomes went to the observers


def _started(execute: Execute, batch: Plan) -> Future[dict[str, Outcome]]:
    """``execute(batch)`` begun in a thread of its own with the caller's context; a daemon
    thread, so that an interrupted run does not wait for it at exit."""
    context = contextvars.copy_context()
    future: Future[dict[str, Outcome]] = Future()

    def run() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(context.run(execute, batch))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="pipex-batch", daemon=True).start()
    return future
