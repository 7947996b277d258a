"""A batch: the missing steps of a run of items of mapped steps, run as one scheduler task.

A :class:`Batch` holds, for some items, each step (family) of one connected group of mapped
steps: its per-item arguments for those items, their targets and states (done, or to run).
:func:`run_batch` runs each item's missing steps one after the other, upstream first, each
through the step runner of fused chains (:func:`pipex.core.handing.run_step`, which calls
:func:`pipex.core.worker.execute_call`: claims, atomic writes and failures are those of any
node), handing data to the next step in memory as a fused chain does. An item that fails
fails itself and the steps of the same item that need it; the batch goes on. It returns
one :class:`BatchResult`: how many items each step wrote, and every other outcome (failed,
not run, waited for, found).
"""

from __future__ import annotations

import socket
import threading
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, final

from pipex.core.handing import Handed, Runner, run_step, takes_data
from pipex.core.outcomes import Outcome
from pipex.core.targets import Target
from pipex.core.worker import Call, Input, execute_call


@dataclass(frozen=True, slots=True)
class Step:
    """One mapped step's part of a batch.

    ``columns`` maps each per-item parameter to its values for the batch's items, or to the
    :class:`Input` of the upstream step it reads (its position in ``upstream``);
    ``constants`` are the same for every item (shared input nodes as ``Input`` placeholders
    numbered after the upstream steps, their targets in ``shared``; an ``Input`` there
    stands for one of the batch task's own inputs: another task's outcome). ``states`` has
    one byte per item: to run (1), done (0), or to run though its target exists (2: stale);
    ``rewrites``, when given, what each stale item rewrites (``Plan.rewrite``).
    """

    task: Any
    name: str
    columns: dict[str, Sequence[Any] | Input]
    constants: Mapping[str, Any]
    linked: frozenset[str]
    upstream: tuple[int, ...]
    shared: tuple[Target | Input, ...]
    paths: Sequence[str]
    store: Any
    home: bool  #: keys are "<name>-<path>" (the target is in the calls' home store)
    states: bytes
    feeds: bool  #: a later step of the batch reads this one
    rewrites: tuple[bool | str, ...] = ()

    def key(self, path: str) -> str:
        return f"{self.name}-{path}" if self.home else f"{self.name}-{Target(path, self.store)}"


@dataclass(frozen=True, slots=True)
class Batch:
    """Some items (``first`` .. ``last``, ``size`` of them) of a group of mapped steps,
    upstream steps first."""

    steps: tuple[Step, ...]
    items: Sequence[int]
    families: tuple[Any, ...] = ()  #: on the client only: the family of each step
    #: A target another runner claimed is not waited for: the item's outcome is Claimed.
    defer: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (Batch, (self.steps, self.items, (), self.defer))

    @property
    def size(self) -> int:
        return len(self.items)

    @property
    def name(self) -> str:
        """``<step>[first..last]``: what a scheduler and a dashboard call it."""
        first, last = self.items[0], self.items[-1]
        return f"{self.steps[-1].name}[{first}..{last}]"

    def __dask_tokenize__(self) -> tuple[str, ...]:
        return ("pipex.Batch", *(step.paths[0] for step in self.steps), str(self.size))

    def first_call(self) -> Call:
        """The call the batch runs first (its first step's first item)."""
        return _call(self.steps[0], 0, False, self.defer)


@final  # so that mypy narrows ``type(x) is BatchResult`` both ways
@dataclass(slots=True)
class BatchResult:
    """What a batch did: per step, how many items wrote their targets, and when each item
    started and how long it ran (0 where it did not run); every other outcome as
    ``(step, position, outcome)``; the worker; the batch's seconds."""

    ran: list[int]
    starts: list[array]
    durations: list[array]
    outcomes: list[tuple[int, int, Outcome]] = field(default_factory=list)
    worker: str = ""
    seconds: float = 0.0


def run_batch(
    batch: Batch, keep_going: bool, *inputs: Outcome, step: Runner = execute_call
) -> BatchResult:
    """Run every missing step of every item of ``batch``, item by item, each call through
    ``step`` (:func:`~pipex.core.worker.execute_call`'s signature). ``inputs``: the
    outcomes of other tasks the batch's steps read (its steps' ``Input`` shared inputs)."""
    clock = time.perf_counter()
    steps = batch.steps
    size = batch.size
    result = BatchResult(
        [0] * len(steps),
        [array("d", bytes(8 * size)) for _ in steps],
        [array("d", bytes(8 * size)) for _ in steps],
        worker=f"{socket.gethostname()}/{threading.get_ident()}",
    )
    shared = [_loaded(own, inputs) for own in steps]
    done_with = _last_readers(steps)
    for position in range(size):
        outcomes: list[Outcome | None] = [None] * len(steps)
        for s, own in enumerate(steps):
            state = own.states[position]
            if not state:
                continue
            rewrite = (own.rewrites[position] if own.rewrites else True) if state == 2 else False
            call = _call(own, position, rewrite, batch.defer)
            data = takes_data(call)
            upstream = [_input(outcomes[u], steps[u], position, data) for u in own.upstream]
            outcome, started, seconds = run_step(
                call, keep_going, (*upstream, *shared[s]), own.feeds, step
            )
            result.durations[s][position] = seconds
            result.starts[s][position] = started
            if type(outcome) is Target or type(outcome) is Handed:  # wrote it (Handed: its
                result.ran[s] += 1  # data kept for the next step; not a Waited or Found one)
            else:
                result.outcomes.append((s, position, outcome))
            outcomes[s] = outcome
            for u in done_with[s]:  # its data handed on: not kept to the item's end
                if type(outcomes[u]) is Handed:
                    outcomes[u] = Target(steps[u].paths[position], steps[u].store)
    result.seconds = time.perf_counter() - clock
    return result


def _last_readers(steps: Sequence[Step]) -> list[list[int]]:
    """For each step, the upstream steps it is the last reader of."""
    last = {u: s for s, own in enumerate(steps) for u in own.upstream}
    out: list[list[int]] = [[] for _ in steps]
    for u, s in last.items():
        out[s].append(u)
    return out


def _input(outcome: Outcome | None, upstream: Step, position: int, data: bool) -> Any:
    """An upstream item's outcome as a step's input (a Target if it was done before; its
    data handed on only to a step that takes data)."""
    if outcome is None:
        return Target(upstream.paths[position], upstream.store)
    if type(outcome) is Handed and not data:
        return Target(outcome.path, outcome.store)
    return outcome


def _probe(step: Step) -> Call:
    return Call(step.task, {}, Target("", step.store), "", step.linked)


def _call(step: Step, position: int, rewrite: bool | str, defer: bool) -> Call:
    arguments: dict[str, Any] = dict(step.constants)
    for name, column in step.columns.items():
        arguments[name] = column if type(column) is Input else column[position]  # type: ignore[index]
    path = step.paths[position]
    return Call(
        step.task, arguments, Target(path, step.store), step.key(path), step.linked, rewrite, defer
    )


def _loaded(step: Step, inputs: tuple[Outcome, ...]) -> tuple[Any, ...]:
    """The step's shared inputs (``inputs[i]`` for an ``Input(i)``), each loaded once for the
    whole batch where it is data."""
    shared = tuple(inputs[x.index] if type(x) is Input else x for x in step.shared)
    if not shared or not takes_data(_probe(step)) or len(step.paths) == 1:
        return shared  # one item: its call loads them, as any call does
    out: list[Any] = []
    for target in shared:
        if type(target) is not Target:  # a failure, or data already here
            out.append(target)
            continue
        try:
            out.append(Handed(target.path, target.store, target.load()))
        except Exception:  # each call reports it, as for any input it cannot read
            out.append(target)
    return tuple(out)


def outcomes(batch: Batch, result: BatchResult) -> Iterator[tuple[str, Outcome]]:
    """Every outcome of a batch, by key (what an observer of single outcomes hears)."""
    other = {(s, p): outcome for s, p, outcome in result.outcomes}
    for s, step in enumerate(batch.steps):
        for position, state in enumerate(step.states):
            if state:
                path = step.paths[position]
                found = other.get((s, position))
                yield step.key(path), found if found is not None else Target(path, step.store)
