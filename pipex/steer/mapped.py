"""The items of mapped steps in :func:`pipex.status`: counted from their states, per step.

Resolution leaves each mapped step visited with one state per item (done, to run, not
checked); the counts come from those arrays, and the Targets listed are rendered from the
step's locations. A plain node that is an item of a mapped step (``m[i]``) is counted once,
as the item.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from pipex.core.items import DONE, UNSEEN, missing_count, refuse_collisions, to_run
from pipex.core.plan import Plan
from pipex.core.targets import Target
from pipex.running import records
from pipex.running.ledger import home


def without_items(plan: Plan) -> Plan:
    """``plan`` without the plain nodes that are items of its mapped steps."""
    nodes = [*plan.missing, *plan.roots]
    items: set[str] = set()
    refuse_collisions(list(plan.families), nodes, lambda _, node: items.add(node.key))
    if not items:
        return plan
    done = {k: v for k, v in plan.done.items() if k not in items}
    missing = [node for node in plan.missing if node.key not in items]
    roots = [node for node in plan.roots if node.key not in items]
    return Plan(roots=roots, done=done, missing=missing, rewrites=plan.rewrites)


class Items:
    """What the items of the mapped steps below some roots add to a status: per step
    ``[done, to run, failed, not checked]``, and the Targets of each kind."""

    def __init__(self, plan: Plan, roots: Sequence[Any]) -> None:
        self.steps: dict[str, list[int]] = {}
        self.done: list[Target] = []
        self.to_run: list[Target] = []
        self.failed: list[Target] = []
        self.not_checked = 0
        for family in _upstream_first(roots):
            self._add(family, plan.families.get(family))

    def _add(self, family: Any, states: bytearray | None) -> None:
        counts = self.steps.setdefault(family.name, [0, 0, 0, 0])
        if states is None:  # below done items only: not checked
            counts[3] += len(family)
            self.not_checked += len(family)
            return
        rendered, store = family.rendered()
        paths = rendered.paths(to_run(states))
        finished = list(itertools.compress(range(len(states)), map(DONE.__eq__, states)))
        gone = _failed(family, paths)
        unseen = states.count(UNSEEN)
        counts[0] += len(finished)
        counts[1] += missing_count(states)
        counts[2] += len(gone)
        counts[3] += unseen
        self.not_checked += unseen
        self.to_run.extend(Target(p, store) for p in paths)
        self.done.extend(Target(p, store) for p in rendered.paths(finished))
        self.failed.extend(Target(p, store) for p in gone)


def _failed(family: Any, paths: list[str]) -> list[str]:
    """Those of ``paths`` (items of ``family`` to run) whose latest run failed."""
    if not paths:
        return []
    found = records.where(home(family.node(0)), "status", ["failed"])
    return [p for p in paths if p in found] if found else []


def _upstream_first(roots: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    seen: set[int] = set()

    def visit(family: Any) -> None:
        if id(family) in seen:
            return
        seen.add(id(family))
        for up in family.upstream:
            visit(up)
        out.append(family)

    for root in roots:
        visit(root)
    return out
