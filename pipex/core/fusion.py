"""Fused chains: a linear chain of missing nodes run as one dask task.

A missing node is fused into the node that uses it when it is that node's only missing
input, has no other user in the plan, and was not itself requested. The chain's steps run
one after the other in one task: each still writes its own target atomically, and each
hands its data to the next in memory (when its serializer gives back what it was given),
so the next step does not load it. A chain runs as a batch of one item
(:mod:`pipex.core.batch`: one step per call, the other tasks' outcomes it reads as the
task's inputs), through the same runner as the batches of mapped steps. Observers still
hear every step: the task returns its :class:`~pipex.core.batch.BatchResult`, which the
executors unpack with :func:`outcomes`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from pipex.core.batch import Batch, BatchResult, Step, run_batch
from pipex.core.handing import Runner
from pipex.core.outcomes import Failure, NotRun, Outcome, failed_inputs
from pipex.core.targets import Target
from pipex.core.walk import replace
from pipex.core.worker import Call, Input, execute_call


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


def chain_batch(
    nodes: Sequence[Any], call_of: Callable[[Any], Call], home: Callable[[Any], bool]
) -> Batch:
    """A chain (from :func:`chains`, inputs first; or one node; or the chains of a bundle,
    :mod:`pipex.core.bundles`, one after the other) as a batch of one item: a step per
    call, each reading the step before it if that is its input; every other input is one of
    the task's inputs, in order (each node's inputs but the node before it).
    ``home(node)``: whether its key is ``"<name>-<path>"``."""
    steps: list[Step] = []
    given = 0
    for i, node in enumerate(nodes):
        call = call_of(node)
        before = -1 if i == 0 else _position(node, nodes[i - 1])
        order = [j for j in range(len(node.deps)) if j != before]
        number = {j: k + (before >= 0) for k, j in enumerate(order)}
        if before >= 0:
            number[before] = 0
        same = all(k == v for k, v in number.items())
        arguments = call.arguments if same else replace(dict(call.arguments), _Renumbered(number))
        rewrite = call.rewrite
        steps.append(
            Step(
                task=call.task,
                name=node.task.name,
                columns={},
                constants=arguments,
                linked=call.linked,
                upstream=() if before < 0 else (i - 1,),
                shared=tuple(Input(given + k) for k in range(len(order))),
                paths=(call.target.path,),
                store=call.target.store,
                home=home(node),
                states=b"\x02" if rewrite else b"\x01",
                feeds=i + 1 < len(nodes) and _position(nodes[i + 1], node) >= 0,
                rewrites=(rewrite,) if rewrite else (),
            )
        )
        given += len(order)
    return Batch(tuple(steps), (0,), defer=call.defer)


def several(nodes: Sequence[Any]) -> bool:
    """Whether a task's ``nodes`` are several chains (a bundle), not one."""
    return any(_position(node, nodes[i - 1]) < 0 for i, node in enumerate(nodes) if i)


def _position(node: Any, before: Any) -> int:
    """Where ``before`` is among ``node``'s inputs (-1: not one of them)."""
    return next((j for j, dep in enumerate(node.deps) if dep.key == before.key), -1)


class _Renumbered:
    """Swaps each :class:`Input` placeholder for its new number."""

    __slots__ = ("number",)

    def __init__(self, number: dict[int, int]) -> None:
        self.number = number

    def __call__(self, value: Any) -> Any:
        return Input(self.number[value.index]) if type(value) is Input else value


def execute_chain(
    batch: Batch,
    keep_going: bool,
    *inputs: Outcome,
    step: Runner = execute_call,
    timed: bool = True,
) -> BatchResult | Outcome:
    """Run a chain's batch (:func:`chain_batch`): its :class:`BatchResult`; without
    ``timed``, only the last step's :class:`Target` when every step wrote its target (a
    scheduler that sees that type needs nothing more)."""
    result = run_batch(batch, keep_going, *inputs, step=step)
    if not timed and not result.outcomes:
        last = batch.steps[-1]
        return Target(last.paths[0], last.store)
    return result


def pick(result: BatchResult | Outcome, target: Target, step: int) -> Outcome:
    """The outcome of one step of a task of several (a fused chain's last, a bundle's
    chains' last ones), as the tasks that use it read it (``target``: that step's target)."""
    if type(result) is not BatchResult:
        return result if type(result) is not Target else target
    found = [outcome for s, _, outcome in result.outcomes if s == step]
    return found[0] if found else target


def outcomes(
    nodes: Sequence[Any], result: BatchResult | Outcome
) -> Iterator[tuple[Any, Outcome, tuple[float, float] | None]]:
    """Each node of a task (one, or a fused chain's) with its outcome and, where known, its
    timing, from what the task returned."""
    if type(result) is BatchResult:
        other = {s: outcome for s, _, outcome in result.outcomes}
        for s, node in enumerate(nodes):
            started = result.starts[s][0]
            timing = (started, result.durations[s][0]) if started else None
            yield node, other.get(s, node.target), timing
    elif type(result) is Target and len(nodes) > 1:  # every step wrote its target
        for node in nodes:
            yield node, node.target, None
    else:
        yield nodes[0], result, None


def lost(
    nodes: Sequence[Any], failure: Failure | NotRun, written: Sequence[bool]
) -> list[Outcome]:
    """The outcomes of a fused chain (or a bundle of chains) whose task itself failed (its
    worker died, say): steps whose targets were ``written`` ran, the first other one of each
    chain failed, the rest of that chain did not run."""
    out: list[Outcome] = []
    for i, node in enumerate(nodes):
        ok = written[i]
        reads = i and _position(node, nodes[i - 1]) >= 0
        causes = failed_inputs(out[-1:]) if reads else frozenset()
        if causes:
            out.append(NotRun(node.key, node.target, causes))
        elif ok:
            out.append(node.target)
        else:
            out.append(dataclasses.replace(failure, key=node.key, target=node.target))
    return out
