"""``pipex.visualize``: a picture of the graph, coloured by what ``pipex.compute`` would do."""

from __future__ import annotations

import os
from typing import Any

from pipex.core.plan import Plan, resolve
from pipex.running import staleness
from pipex.steer import dot, picture, svg
from pipex.steer.graph import Graph, collect
from pipex.steer.status import Status, of_plan

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
    roots = collect(nodes)
    plan = resolve(roots, stale=staleness.check(roots))
    drawing = picture_of(Graph(roots), plan, of_plan(plan), max_boxes)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.write(writer(drawing))
    return path


def picture_of(graph: Graph, plan: Plan, status: Status, max_boxes: int = 60) -> picture.Picture:
    """The picture of ``graph``: a box per node up to ``max_boxes`` nodes, else per step."""
    if len(graph) <= max_boxes:
        return picture.of_nodes(graph, plan, set(status.failed))
    return picture.of_steps(graph, status)
