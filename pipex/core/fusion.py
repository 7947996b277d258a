"""Fused chains: a linear chain of missing nodes run as one dask task.

A missing node is fused into the node that uses it when it is that node's only missing
input, has no other user in the plan, and was not itself requested. The chain's steps run
one after the other in one task: each still writes its own target atomically, and each
hands its data to the next in memory (when its serializer gives back what it was given),
so the next step does not load it. Observers still hear every step: the task returns its
:class:`Steps`, which the executors unpack with :func:`outcomes`.
"""

from __future__ import annotations

import dataclasses
import itertools
import posixpath
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, final

from pipex import serializers
from pipex.core.outcomes import Failure, NotRun, Outcome, failed_inputs
from pipex.core.targets import Target
from pipex.core.worker import Call, execute_call

Runner = Callable[..., Outcome]  # execute_call's signature: (call, keep_going, *inputs)


class Member(NamedTuple):
    """A node as :func:`outcomes` needs it, small enough to send with a graph."""

    key: str
    target: Target


def members(nodes: Sequence[Any]) -> list[Member]:
    """The :class:`Member` of each of ``nodes``."""
    return [Member(node.key, node.target) for node in nodes]


def chains(plan: Any, fusable: Callable[[Any], bool] | None = None) -> list[list[Any]]:
    """The plan's missing nodes as chains, inputs first; most chains are one node long.

    ``fusable`` (default: every node) says which nodes may share a task with others.
    """
    missing: dict[str, Any] = {}
    for node in plan.missing:
        missing.setdefault(node.key, node)
    requested = {node.key for node in plan.roots}
    users: Counter[str] = Counter()
    for node in missing.values():
        for dep in node.deps:
            if dep.key in missing:
                users[dep.key] += 1
    before: dict[str, Any] = {}  # node key -> the node fused just before it
    for node in missing.values():
        inner = [dep for dep in node.deps if dep.key in missing]
        if len(inner) != 1:
            continue
        dep = missing[inner[0].key]
        if users[dep.key] != 1 or dep.key in requested:
            continue
        if fusable is None or (fusable(dep) and fusable(node)):
            before[node.key] = dep
    inside = {dep.key for dep in before.values()}
    out: list[list[Any]] = []
    for node in missing.values():
        if node.key in inside:
            continue
        chain = [node]
        while chain[-1].key in before:
            chain.append(before[chain[-1].key])
        chain.reverse()
        out.append(chain)
    return out


@dataclass(frozen=True, slots=True)
class Chain:
    """The calls of a fused chain, inputs first, and how the task's inputs reach them.

    Step ``i`` takes ``widths[i]`` of the task's inputs, in order; every step but the first
    also takes the step before it, at position ``previous[i]`` among its own inputs.
    """

    calls: tuple[Call, ...]
    widths: tuple[int, ...]
    previous: tuple[int, ...]

    def __dask_tokenize__(self) -> tuple[str, ...]:
        return ("pipex.Chain", *(call.key for call in self.calls))


def chain_of(nodes: Sequence[Any], call_of: Callable[[Any], Call]) -> Chain:
    """The :class:`Chain` of ``nodes`` (a chain from :func:`chains`, inputs first)."""
    widths = [len(nodes[0].deps)]
    previous = [-1]
    for before, node in itertools.pairwise(nodes):
        widths.append(len(node.deps) - 1)
        previous.append(next(i for i, dep in enumerate(node.deps) if dep.key == before.key))
    return Chain(tuple(call_of(node) for node in nodes), tuple(widths), tuple(previous))


@final  # so that mypy narrows ``type(x) is Steps`` both ways
@dataclass(frozen=True, slots=True)
class Steps:
    """What a fused task returns: each step's outcome, and when it started and how long it
    ran (seconds since the epoch, seconds), inputs first."""

    outcomes: tuple[Outcome, ...]
    timings: tuple[tuple[float, float], ...]


def execute_chain(
    chain: Chain,
    keep_going: bool,
    *inputs: Outcome,
    step: Runner = execute_call,
    timed: bool = True,
) -> Steps | Outcome:
    """Run a chain's steps in turn, each through ``step`` (:func:`execute_call`'s signature).

    Returns the :class:`Steps`; without ``timed``, only the last step's :class:`Target`
    when every step wrote its target (a scheduler that sees that type needs nothing more).
    A step whose input failed is not run (``step`` returns its :class:`NotRun`).
    """
    outcomes: list[Outcome] = []
    timings: list[tuple[float, float]] = []
    position = 0
    prior: Outcome | None = None
    for i, call in enumerate(chain.calls):
        own = inputs[position : position + chain.widths[i]]
        position += chain.widths[i]
        if prior is not None:
            if type(prior) is Handed and not takes_data(call):
                prior = Target(prior.path, prior.store)
            at = chain.previous[i]
            own = (*own[:at], prior, *own[at:])
        prior, started, seconds = run_step(call, keep_going, own, i + 1 < len(chain.calls), step)
        outcomes.append(Target(prior.path, prior.store) if type(prior) is Handed else prior)
        timings.append((started, seconds))
    if not timed and all(type(outcome) is Target for outcome in outcomes):
        return outcomes[-1]
    return Steps(tuple(outcomes), tuple(timings))


def run_step(
    call: Call,
    keep_going: bool,
    inputs: Sequence[Outcome],
    read_next: bool,
    step: Runner = execute_call,
) -> tuple[Outcome, float, float]:
    """Run one step of a fused chain or of a batch's item through ``step``: its outcome,
    when it started (seconds since the epoch) and how long it ran. With ``read_next`` (a
    later step of the same task reads it), a written target whose data the next step would
    load as it is comes back :class:`Handed`, that data attached (the caller keeps it for
    that step only)."""
    kept = Keep(call.task) if read_next and exact(call) else None
    run = call if kept is None else call.with_task(kept)
    started = time.time()
    clock = time.perf_counter()
    outcome = step(run, keep_going, *inputs)
    seconds = time.perf_counter() - clock
    if kept is not None and kept.has and type(outcome) is Target:
        outcome = Handed(outcome.path, outcome.store, kept.result)
    return outcome, started, seconds


def last(result: Steps | Outcome) -> Outcome:
    """The outcome a fused task hands the tasks that use it: its last step's."""
    return result.outcomes[-1] if type(result) is Steps else result


def outcomes(
    nodes: Sequence[Any], result: Steps | Outcome
) -> Iterator[tuple[Any, Outcome, tuple[float, float] | None]]:
    """Each node of a task (one, or a fused chain's) with its outcome and, where known, its
    timing, from what the task returned."""
    if type(result) is Steps:
        yield from zip(nodes, result.outcomes, result.timings, strict=True)
    elif type(result) is Target and len(nodes) > 1:  # every step wrote its target
        for node in nodes:
            yield node, node.target, None
    else:
        yield nodes[0], result, None


def lost(
    nodes: Sequence[Any], failure: Failure | NotRun, written: Sequence[bool]
) -> list[Outcome]:
    """The outcomes of a fused chain whose task itself failed (its worker died, say): steps
    whose targets were ``written`` ran, the first other one failed, the rest did not run."""
    out: list[Outcome] = []
    for node, ok in zip(nodes, written, strict=True):
        causes = failed_inputs(out[-1:])
        if causes:
            out.append(NotRun(node.key, node.target, causes))
        elif ok:
            out.append(node.target)
        else:
            out.append(dataclasses.replace(failure, key=node.key, target=node.target))
    return out


def exact(call: Call) -> bool:
    """Whether the data a step returns is what the next would load from its target."""
    return call.task.save and serializers.exact(posixpath.splitext(call.target.path)[1])


def takes_data(call: Call) -> bool:
    """Whether a step takes all its inputs as data (none as a :class:`Target` parameter)."""
    return not (call.linked & call.task.target_parameters)


class Keep:
    """A step's task that keeps what it returned, to hand it to the next step."""

    __slots__ = ("has", "result", "task")

    def __init__(self, task: Any) -> None:
        self.task = task
        self.has = False
        self.result: Any = None

    def call(self, arguments: Mapping[str, Any], target: str) -> Any:
        self.result = self.task.call(arguments, target)
        self.has = True
        return self.result

    def __getattr__(self, name: str) -> Any:  # save, target_parameters, name, ...
        return getattr(self.task, name)


class Handed(Target):
    """The target of the step before, whose data is already here: loading it costs nothing.

    Pickled, it is the plain :class:`Target`.
    """

    __slots__ = ("data",)

    def __init__(self, path: str, store: Any, data: Any) -> None:
        super().__init__(path, store)
        self.data = data

    def load(self) -> Any:
        return self.data
