"""``pipex.visualize``: a picture of the graph, coloured by what ``pipex.compute`` would do."""

from __future__ import annotations

import graphlib
import os
from collections import Counter
from typing import Any

from pipex.core.plan import Plan, resolve
from pipex.running import staleness
from pipex.steer import dot, picture, svg
from pipex.steer.graph import Graph, collect
from pipex.steer.status import Status, of_plan, status

WRITERS = {".svg": svg.render, ".dot": dot.render, ".gv": dot.render}


def visualize(
    *nodes: Any, filename: str | os.PathLike[str] = "pipeline.svg", max_boxes: int = 60
) -> str:
    """Draw the graph below ``nodes`` into ``filename``; returns the file's path.

    Each target is coloured by status: done, to run, failed last time, or below a done
    target (not checked, as ``pipex.compute`` would not check it). A graph of up to
    ``max_boxes`` nodes gets one box per node; a larger one, one box per step with its
    counts. The suffix picks the format: ``.svg`` (written by pipex, opens in any browser)
    or ``.dot`` (Graphviz text). No output is loaded; it costs a resolution and a walk of the
    graph.
    """
    path = os.fspath(filename)
    suffix = os.path.splitext(path)[1].lower()
    writer = WRITERS.get(suffix)
    if writer is None:
        raise ValueError(
            f"pipex.visualize writes {', '.join(WRITERS)} files, not {suffix or 'no suffix'} "
            f"({path}); name the file pipeline.svg and open it in a browser"
        )
    families: list[Any] = []
    roots = collect(nodes, families)
    # mapped steps: one box per step, counted from the items' states
    drawing = of_steps(roots, families, status(*nodes)) if families else _drawing(roots, max_boxes)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.write(writer(drawing))
    return path


def _drawing(roots: list[Any], max_boxes: int) -> picture.Picture:
    plan = resolve(roots, stale=staleness.check(roots))
    return picture_of(Graph(roots), plan, of_plan(plan), max_boxes)


def picture_of(graph: Graph, plan: Plan, status: Status, max_boxes: int = 60) -> picture.Picture:
    """The picture of ``graph``: a box per node up to ``max_boxes`` nodes, else per step."""
    if len(graph) <= max_boxes:
        return picture.of_nodes(graph, plan, set(status.failed))
    return picture.of_steps(graph, status)


def of_steps(roots: list[Any], families: list[Any], counted: Any) -> picture.Picture:
    """The step picture of plain nodes and mapped steps together (``counted``: their
    :class:`Status`)."""
    graph = Graph([*roots, *(dep for f in _below(families) for dep in f.deps)])
    totals = Counter(node.task.name for node in graph.nodes)
    edges = {(d.task.name, n.task.name) for n in graph.nodes for d in n.deps}
    for family in _below(families):
        totals[family.name] += len(family)
        edges.update((up.name, family.name) for up in family.upstream)
        edges.update((dep.task.name, family.name) for dep in family.deps)
    edges = {(a, b) for a, b in edges if a != b}
    reads: dict[str, set[str]] = {name: set() for name in totals}
    for a, b in edges:
        reads[b].add(a)
    try:
        order = list(graphlib.TopologicalSorter(reads).static_order())
    except graphlib.CycleError:
        order = list(reads)
    return picture.by_steps(totals, order, edges, counted)


def _below(families: list[Any]) -> list[Any]:
    out: dict[int, Any] = {}
    stack = list(families)
    while stack:
        family = stack.pop()
        if id(family) not in out:
            out[id(family)] = family
            stack.extend(family.upstream)
    return list(out.values())
