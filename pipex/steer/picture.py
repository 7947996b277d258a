"""A picture of a graph coloured by status: boxes, arrows, a layered layout.

Small graphs get one box per node; large ones one box per step with its counts, so 100,000
nodes still make a small picture. Writers (:mod:`pipex.steer.svg`, :mod:`pipex.steer.dot`)
draw a :class:`Picture`; this module decides what is in it and where.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipex.core.plan import Plan
from pipex.steer.graph import Graph
from pipex.steer.status import Status

#: The states a target can be in, in legend order, with their colours.
STATES = {
    "done": "#66bb6a",
    "to run": "#ffa726",
    "failed": "#ef5350",
    "unchecked": "#cfd8dc",
}
LEGEND = {
    "done": "done",
    "to run": "to run",
    "failed": "failed last time",
    "unchecked": "below a done target (not checked)",
}

SHORT = {"unchecked": "not checked"}


@dataclass
class Box:
    """One box: a node, or a step with counts per state."""

    title: str
    lines: list[str]
    counts: Counter[str]  #: state -> how many targets (one for a node box)
    layer: int = 0
    row: int = 0


@dataclass
class Picture:
    """Boxes in layers (inputs to the left) and the arrows between them."""

    boxes: list[Box] = field(default_factory=list)
    edges: set[tuple[int, int]] = field(default_factory=set)  #: (input box, user box)
    title: str = ""

    def layers(self) -> list[list[int]]:
        """Box indexes per layer, each layer in row order."""
        count = 1 + max((box.layer for box in self.boxes), default=0)
        out: list[list[int]] = [[] for _ in range(count)]
        for i in sorted(range(len(self.boxes)), key=lambda i: self.boxes[i].row):
            out[self.boxes[i].layer].append(i)
        return out


def of_nodes(graph: Graph, plan: Plan, failed: set[Any]) -> Picture:
    """One box per node of a small graph, coloured by what ``pipex.compute`` would do."""
    missing = {id(node) for node in plan.missing}
    index = {id(node): i for i, node in enumerate(graph.nodes)}
    picture = Picture(title=f"{len(graph)} targets")
    for node in graph.nodes:
        target = node.target
        if node.key in plan.done:
            state = "done"
        elif id(node) in missing:
            state = "failed" if target in failed else "to run"
        else:
            state = "unchecked"
        picture.boxes.append(Box(node.task.name, [target.name], Counter({state: 1})))
        picture.edges.update((index[id(dep)], index[id(node)]) for dep in node.deps)
    _layout(picture)
    return picture


def of_steps(graph: Graph, status: Status) -> Picture:
    """One box per step of a large graph, with its counts per state."""
    edges = {
        (dep.task.name, node.task.name)
        for node in graph.nodes
        for dep in node.deps
        if dep.task.name != node.task.name
    }
    totals = Counter(node.task.name for node in graph.nodes)
    return by_steps(totals, graph.steps(), edges, status)


def by_steps(
    totals: Counter[str], order: list[str], edges: set[tuple[str, str]], status: Status
) -> Picture:
    """One box per step (``totals``: its targets; ``order``: inputs' steps first; ``edges``:
    which step reads which), with its counts per state from ``status``."""
    index = {name: i for i, name in enumerate(order)}
    picture = Picture(title=f"{sum(totals.values()):,} targets in {len(order)} steps")
    for name in order:
        counts = status.steps.get(name)
        done, to_run, failed = (counts.done, counts.to_run, counts.failed) if counts else (0, 0, 0)
        states = Counter(
            {
                "done": done,
                "to run": to_run - failed,
                "failed": failed,
                "unchecked": max(totals[name] - done - to_run, 0),
            }
        )
        shown = [f"{n:,} {SHORT.get(state, state)}" for state, n in states.items() if n]
        lines = [f"{totals[name]:,} targets", ", ".join(shown)]
        picture.boxes.append(Box(name, lines, +states))
    picture.edges.update((index[a], index[b]) for a, b in edges if a in index and b in index)
    _layout(picture)
    return picture


def _layout(picture: Picture) -> None:
    """Layer = longest path from an input box; rows ordered by their inputs' rows."""
    inputs: dict[int, list[int]] = {i: [] for i in range(len(picture.boxes))}
    for a, b in picture.edges:
        if a != b:
            inputs[b].append(a)
    layer = _longest_paths(inputs)
    for i in range(len(picture.boxes)):
        picture.boxes[i].layer = layer[i]
    rows: dict[int, float] = {}
    for members in picture.layers():
        keyed = sorted(
            members,
            key=lambda i: (
                sum(rows[j] for j in inputs[i] if j in rows) / max(len(inputs[i]), 1),
                i,
            ),
        )
        for row, i in enumerate(keyed):
            rows[i] = row
            picture.boxes[i].row = row


def _longest_paths(inputs: dict[int, list[int]]) -> dict[int, int]:
    """Each box's longest path from an input box (edges back into the path walked are left
    out), found in a loop: a chain of boxes of any length needs no recursion."""
    layer: dict[int, int] = {}
    for start in inputs:
        if start in layer:
            continue
        path = {start}
        stack = [(start, iter(inputs[start]), [-1])]
        while stack:
            i, ins, best = stack[-1]
            for j in ins:
                if j in path:
                    continue
                if j in layer:
                    best[0] = max(best[0], layer[j])
                    continue
                path.add(j)
                stack.append((j, iter(inputs[j]), [-1]))
                break
            else:
                stack.pop()
                path.discard(i)
                layer[i] = 1 + best[0]
                if stack:
                    outer = stack[-1][2]
                    outer[0] = max(outer[0], layer[i])
    return layer
