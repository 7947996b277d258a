"""``pipex.status``: what :func:`pipex.compute` would find done and run, per step.

It is resolution and nothing more: the same listings, no output loaded, nothing below a
finished target visited; plus one read of the run ledger for the targets to run (which of
them failed last time), and a walk of the graph in memory to count the targets below done
ones, which no run checks ("not checked").
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from typing import Any

from pipex.core.plan import Plan, resolve
from pipex.core.targets import Target
from pipex.running import records, staleness
from pipex.steer import mapped
from pipex.steer.graph import collect, step_order
from pipex.steer.table import plain

HEADER = ("step", "done", "to run", "failed", "not checked")


@dataclass(frozen=True)
class StepCounts:
    """How many of one step's targets are done, to run, failed last time, not checked."""

    done: int = 0
    to_run: int = 0
    failed: int = 0  #: of those to run, how many failed in their latest run
    not_checked: int = 0  #: below done targets: resolution stops above them


@dataclass(frozen=True)
class Status:
    """What :func:`pipex.compute` would do now.

    ``done``: the targets it would find written (nothing below them is visited); ``to_run``:
    the targets of the tasks it would run, inputs first; ``steps``: step (task name) ->
    :class:`StepCounts`, inputs' steps first; ``failed``: the targets of ``to_run`` whose
    latest run failed, by the run ledger (empty when ``pipex.ledger`` is false);
    ``not_checked``: how many targets lie below done ones only (not visited, so not
    rendered: a count). ``total`` has the four counts of the whole pipeline.
    """

    done: list[Target]
    to_run: list[Target]
    steps: dict[str, StepCounts]
    failed: list[Target] = field(default_factory=list)
    not_checked: int = 0

    @property
    def total(self) -> StepCounts:
        """The counts of every step together: ``len(done)``, ``len(to_run)``..."""
        return StepCounts(len(self.done), len(self.to_run), len(self.failed), self.not_checked)

    def __repr__(self) -> str:
        return (
            f"<pipex.Status {len(self.done)} done, {len(self.to_run)} to run, "
            f"{len(self.failed)} failed last time, {self.not_checked} not checked, "
            f"{len(self.steps)} step(s)>"
        )

    def rows(self) -> list[tuple[str, int, int, int, int]]:
        """One ``(step, done, to run, failed, not checked)`` row per step, then ``total``."""
        rows = [(name, *astuple(counts)) for name, counts in self.steps.items()]
        rows.append(("total", *astuple(self.total)))
        return rows

    def __str__(self) -> str:
        return plain(HEADER, self.rows())


def status(*nodes: Any) -> Status:
    """What :func:`pipex.compute` would find done and run for ``nodes``, per step.

    Takes what ``pipex.compute`` takes (nodes, or lists, tuples and dicts of them). Costs what
    resolution costs: one listing per folder, no output loaded, nothing below a done target
    visited (the targets there are counted as not checked, from a walk of the graph in
    memory). With the opt-ins of the run ledger (a task's ``version``, ``pipex.rerun:
    code``), stale targets count as to run, as in compute.
    """
    families: list[Any] = []
    roots = collect(nodes, families)
    stale = staleness.check([*roots, *families])
    plan = resolve(roots, stale=stale, families=families)
    if not plan.families:
        return of_plan(plan, below=True)
    plain = of_plan(mapped.without_items(plan), below=True)
    items = mapped.Items(plan, families)
    steps = dict(plain.steps)
    for name, (done, to_run, failed, not_checked) in items.steps.items():
        had = steps.get(name, StepCounts())
        steps[name] = StepCounts(
            had.done + done,
            had.to_run + to_run,
            had.failed + failed,
            had.not_checked + not_checked,
        )
    return Status(
        done=[*plain.done, *items.done],
        to_run=[*plain.to_run, *items.to_run],
        steps=steps,
        failed=[*plain.failed, *items.failed],
        not_checked=plain.not_checked + items.not_checked,
    )


def of_plan(plan: Plan, below: bool = False) -> Status:
    """The :class:`Status` of a resolved plan; with ``below``, the steps and targets below
    done targets too (not checked)."""
    done_nodes = _done_nodes(plan)
    unchecked = _not_checked(plan, done_nodes) if below else []
    every = [*plan.missing, *done_nodes, *unchecked]
    present = {node.task.name for node in every}
    counts = {name: [0, 0, 0, 0] for name in step_order(every) if name in present}
    for node in done_nodes:
        counts[node.task.name][0] += 1
    for node in plan.missing:
        counts[node.task.name][1] += 1
    order = plan.order()
    failed = records.failed_last_time(order)
    for node in failed:
        counts[node.task.name][2] += 1
    for node in unchecked:
        counts[node.task.name][3] += 1
    steps = {name: StepCounts(*numbers) for name, numbers in counts.items()}
    to_run = [node.target for node in order]
    return Status(
        done=list(plan.done.values()),
        to_run=to_run,
        steps=steps,
        failed=[node.target for node in failed],
        not_checked=len(unchecked),
    )


def _not_checked(plan: Plan, done: list[Any]) -> list[Any]:
    """The nodes below the ``done`` ones that resolution did not check: neither roots nor
    inputs of missing nodes (each node object once, found by identity: no target is
    rendered for them)."""
    seen = {id(node) for node in plan.roots}
    for node in plan.missing:
        seen.add(id(node))
        seen.update(id(dep) for dep in node.deps)
    seen.update(id(node) for node in done)
    found: list[Any] = []
    stack = [dep for node in done for dep in node.deps]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            found.append(node)
            stack.extend(node.deps)
    return found


def _done_nodes(plan: Plan) -> list[Any]:
    """One node per done target: the roots and inputs of missing nodes that resolution found."""
    found: dict[str, Any] = {}
    for node in plan.roots:
        if node.key in plan.done:
            found.setdefault(node.key, node)
    for node in plan.missing:
        for dep in node.deps:
            if dep.key in plan.done:
                found.setdefault(dep.key, dep)
    return list(found.values())
