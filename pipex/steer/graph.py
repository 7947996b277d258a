"""The whole graph below some roots, walked once: its nodes, and who depends on whom.

Resolution stops at finished targets; seeing and steering need the rest too (what lies
below a finished target, and what lies above a target to be reset). Nodes are found by
identity, so walking renders no target: 100,000 nodes cost a tenth of a second.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Iterator
from typing import Any

from pipex.core.walk import visit
from pipex.expand import Expansion
from pipex.mapped import Mapped
from pipex.node import Collect


class Graph:
    """Every node reachable from ``roots`` (each node object once), inputs after users.

    ``dependants`` (node -> the nodes that take it as an input) is built on first use.
    """

    __slots__ = ("_dependants", "nodes", "roots")

    def __init__(self, roots: Iterable[Any]) -> None:
        self.roots = list(roots)
        seen: set[int] = set()
        nodes: list[Any] = []
        stack = list(reversed(self.roots))
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            nodes.append(node)
            stack.extend(reversed(node.deps))
        self.nodes = nodes
        self._dependants: dict[int, list[Any]] | None = None

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node: object) -> bool:
        return id(node) in self.dependants

    @property
    def dependants(self) -> dict[int, list[Any]]:
        """``id(node)`` -> the nodes of the graph that take ``node`` as an input."""
        if self._dependants is None:
            index: dict[int, list[Any]] = {id(node): [] for node in self.nodes}
            for node in self.nodes:
                for dep in node.deps:
                    index[id(dep)].append(node)
            self._dependants = index
        return self._dependants

    def downstream(self, selected: Iterable[Any]) -> Iterator[Any]:
        """``selected`` and every node of the graph that depends on one of them, each once."""
        index = self.dependants
        seen: set[int] = set()
        stack = list(selected)[::-1]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            yield node
            stack.extend(reversed(index.get(id(node), ())))

    def steps(self) -> list[str]:
        """The step names (task names) of the graph, every step after the steps it reads."""
        return step_order(self.nodes)


def step_order(nodes: Iterable[Any]) -> list[str]:
    """The steps of ``nodes``, inputs' steps first (first-seen order where steps form a cycle)."""
    reads: dict[str, set[str]] = {}
    for node in nodes:
        name = node.task.name
        inputs = reads.get(name)
        if inputs is None:
            inputs = reads[name] = set()
        for dep in node.deps:
            inputs.add(dep.task.name)
        inputs.discard(name)
    try:
        return list(graphlib.TopologicalSorter(reads).static_order())
    except graphlib.CycleError:
        return list(reads)


def collect(args: Iterable[Any], families: list[Any] | None = None) -> list[Any]:
    """The nodes in ``args`` (lists, tuples, dicts of nodes are looked inside, as in compute);
    an expansion counts as its node (the nodes it produces are known once that has run). A
    mapped step goes to ``families`` when given, else counts as its items' nodes."""
    nodes: list[Any] = []
    collect = Collect(nodes)

    def visitor(value: Any) -> None:
        if type(value) is Mapped:
            if families is not None:
                families.append(value.family)
            else:
                nodes.extend(value)
            return
        collect(value.node if type(value) is Expansion else value)

    for arg in args:
        visit(arg, visitor)
    return nodes
