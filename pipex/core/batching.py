"""From a plan's item states to batches: groups of connected mapped steps, cut in runs of
items whose size adapts to how long items take.

A *group* is a set of mapped steps linked item by item (``small.map(gray.map(pages))``):
item ``i`` of each reads item ``i`` of the steps it maps over, so a batch of items carries
every step of its group, upstream first. :class:`Sizer` picks each batch's size: fixed by
the setting ``pipex.map.batch-size``, or (``auto``) so that a batch is about
:data:`SECONDS` of work, learned from the batches that finished.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pipex.core.batch import Batch, Step
from pipex.core.items import runs
from pipex.core.walk import replace
from pipex.core.worker import Input

#: The work one batch aims at, in seconds (``pipex.map.batch-size: auto``).
SECONDS = 0.3
#: The first batches' size, before any has been timed; and the largest.
FIRST, LARGEST = 8, 100_000

_STATES = bytes([0, 0, 1, 2] + [0] * 252)  # item state -> Step.states byte


class Group:
    """Connected mapped steps, upstream first, and the items where any of them runs."""

    def __init__(self, families: list[Any], states: Mapping[Any, bytearray]) -> None:
        self.families = families
        self.states = [states[f] for f in families]
        either = int.from_bytes(runs(self.states[0]), "little")
        for more in self.states[1:]:
            either |= int.from_bytes(runs(more), "little")
        flags = either.to_bytes(len(self.states[0]), "little")
        self.items = list(itertools.compress(range(len(flags)), flags))

    def __len__(self) -> int:
        return len(self.items)

    def batch(self, items: Sequence[int], shared: Mapping[str, Any], defer: bool = False) -> Batch:
        """The batch of ``items``; ``shared`` holds the outcomes of the shared input nodes."""
        position = {id(f): p for p, f in enumerate(self.families)}
        read = {id(up) for f in self.families for up in f.upstream}
        contiguous = items[-1] - items[0] + 1 == len(items)
        steps = []
        for family, states in zip(self.families, self.states, strict=True):
            rendered, store = family.rendered()
            inputs = {id(up): Input(k) for k, up in enumerate(family.upstream)}
            columns: dict[str, Any] = {}
            for name, column in family.columns.items():
                if id(column) in inputs:
                    columns[name] = inputs[id(column)]
                elif contiguous:
                    columns[name] = column[items[0] : items[-1] + 1]
                else:
                    columns[name] = [column[i] for i in items]
            n = len(family.upstream)
            swap = {id(dep): Input(n + j) for j, dep in enumerate(family.deps)}
            constants = {}
            linked = {name for name in columns if id(family.columns[name]) in inputs}
            for name, value in family.constants.items():
                swapped = replace(value, _Swap(swap)) if swap else value
                if swapped is not value:
                    linked.add(name)
                constants[name] = swapped
            home = family.origin.store
            steps.append(
                Step(
                    task=family.task,
                    name=family.name,
                    columns=columns,
                    constants=constants,
                    linked=frozenset(linked),
                    upstream=tuple(position.get(id(up), -1) for up in family.upstream),
                    shared=tuple(shared[dep.key] for dep in family.deps),
                    paths=rendered.paths(range(items[0], items[-1] + 1) if contiguous else items),
                    store=store,
                    home=home is not None and (store is home or store == home),
                    states=bytes(states[i] for i in items).translate(_STATES),
                    feeds=id(family) in read,
                )
            )
        return Batch(tuple(steps), items, tuple(self.families), defer)


class _Swap:
    __slots__ = ("inputs",)

    def __init__(self, inputs: dict[int, Input]) -> None:
        self.inputs = inputs

    def __call__(self, value: Any) -> Any:
        return self.inputs.get(id(value), value)


def groups(states: Mapping[Any, bytearray]) -> list[Group]:
    """The plan's families that have items to run, in connected groups, upstream first."""
    running = [f for f, s in states.items() if runs(s).count(1)]
    ids = {id(f): f for f in running}
    for family in running:  # with the steps they read, done or not (their targets are inputs)
        for up in family.upstream:
            if id(up) not in ids and up in states:
                ids[id(up)] = up
                running.append(up)
    parent = {id(f): id(f) for f in running}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for family in running:
        for up in family.upstream:
            if id(up) in parent:
                parent[root(id(family))] = root(id(up))
    members: dict[int, list[Any]] = {}
    for family in _upstream_first(running):
        members.setdefault(root(id(family)), []).append(family)
    del ids
    return [Group(families, states) for families in members.values()]


def _upstream_first(families: list[Any]) -> list[Any]:
    inside = {id(f) for f in families}
    placed: set[int] = set()
    out: list[Any] = []
    for start in families:
        stack = [(start, iter(start.upstream))]
        while stack:
            family, ups = stack[-1]
            up = next(ups, None)
            if up is None:
                stack.pop()
                if id(family) not in placed:
                    placed.add(id(family))
                    out.append(family)
            elif id(up) in inside and id(up) not in placed:
                stack.append((up, iter(up.upstream)))
    return out


class Sizer:
    """How many items the next batch holds: ``fixed``, or about :data:`SECONDS` of work
    (learned from finished batches), never so many that ``workers`` would sit idle."""

    def __init__(self, fixed: int | None, workers: int, total: int) -> None:
        self.fixed = fixed
        self.workers = max(1, workers)
        self.total = total
        self.per_item: float | None = None
        self._lock = threading.Lock()

    def next(self, left: int) -> int:
        if self.fixed is not None:
            return max(1, self.fixed)
        if self.per_item is None:
            return max(1, min(FIRST, left))
        size = int(SECONDS / max(self.per_item, 1e-7))
        share = -(-left // (2 * self.workers))  # leave work for every worker
        return max(1, min(size, LARGEST, share))

    def learn(self, items: int, seconds: float) -> None:
        if items <= 0:
            return
        with self._lock:
            sample = seconds / items
            known = self.per_item
            self.per_item = sample if known is None else 0.5 * known + 0.5 * sample


def cut(group: Group, sizer: Sizer) -> Iterator[Sequence[int]]:
    """``group``'s items in runs, each as long as the sizer says when it is asked."""
    items = group.items
    start = 0
    while start < len(items):
        size = sizer.next(len(items) - start)
        yield items[start : start + size]
        start += size
