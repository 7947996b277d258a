"""What a report page shows, read from a resolution and the run ledger (never an output).

:func:`gather` resolves the pipeline (what :func:`pipex.status` does), draws its step graph
(the picture of ``pipex graph``), and reads from the ledgers of its roots the run to show
(the one given, else the latest that wrote one of its targets): its task runs (step, status,
start, duration, worker), its failures grouped by step and error, and the history of runs.
Every text that may hold a location goes through :func:`~pipex.redact.redact`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipex.core.grouping import FailureGroup, group
from pipex.core.plan import resolve
from pipex.redact import redact
from pipex.running import staleness
from pipex.running.ledger import home, location
from pipex.running.records import Failed, Run, reading, runs
from pipex.steer import svg
from pipex.steer.graph import Graph, collect
from pipex.steer.status import Status, of_plan
from pipex.steer.status import status as status_of
from pipex.steer.visualize import of_steps, picture_of

#: The most targets a failure group lists on the page (its count says how many there are).
GROUP_TARGETS = 200
#: How many runs the history shows, and how many of the slowest task runs.
HISTORY, SLOWEST = 30, 15
#: The step graph has a box per target up to this many targets, else a box per step.
MAX_BOXES = 24


@dataclass(frozen=True)
class TaskRun:
    """One timed task run of the shown run."""

    step: str
    target: str
    started: float
    duration: float
    worker: str


@dataclass
class Facts:
    """Everything a page shows; built by :func:`gather`."""

    title: str
    status: Status
    graph_svg: str
    run: Run | None = None  #: the run shown (``None``: no run recorded)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  #: step -> status -> n
    timed: list[TaskRun] = field(default_factory=list)  #: its timed task runs
    failures: list[FailureGroup] = field(default_factory=list)
    history: list[Run] = field(default_factory=list)  #: newest first
    ledger: bool = True  #: whether a ledger was found

    @property
    def steps(self) -> list[str]:
        """Every step of the pipeline and of the run, inputs' steps first."""
        names = list(self.status.steps)
        names += [name for name in self.counts if name not in self.status.steps]
        return names


def gather(nodes: Sequence[Any], title: str = "pipex report", run: str | None = None) -> Facts:
    """The facts about the pipeline below ``nodes`` now, and about ``run`` (a run id; by
    default the latest run that wrote, or meant to write, one of its targets)."""
    families: list[Any] = []
    roots = collect(nodes, families)
    if families:  # mapped steps: counted from their items' states, one box per step
        status = status_of(*nodes)
        picture = of_steps(roots, families, status)
    else:
        plan = resolve(roots, stale=staleness.check(roots))
        status = of_plan(plan, below=True)
        picture = picture_of(Graph(roots), plan, status, max_boxes=MAX_BOXES)
    facts = Facts(redact(title), status, redact(svg.render(picture)))
    homes = (home(n) for n in [*roots, *(family.node(0) for family in families if len(family))])
    files = list(dict.fromkeys(f for f in map(location, homes) if f is not None))
    paths = [t.path for t in (*status.done, *status.to_run)]
    history = sorted(
        (r for file in files for r in runs(file, HISTORY, paths or None)),
        key=lambda r: r.started,
        reverse=True,
    )
    facts.ledger = bool(history)
    facts.history = history[:HISTORY]
    if run is not None:
        facts.run = next((r for r in history if r.run == run), None)
    elif history:
        facts.run = history[0]
    if facts.run is not None:
        for file in files:
            _read_run(file, facts.run.run, facts)
    return facts


TASKS = "SELECT step, target, status, started, duration, worker FROM tasks WHERE run = ?"
FAILURES = (
    "SELECT step, coalesce(error, ''), target, path, coalesce(traceback, '') FROM tasks "
    "WHERE run = ? AND status = 'failed' ORDER BY id"
)


def _read_run(file: str, run: str, facts: Facts) -> None:
    """Add the task runs and failures of ``run`` recorded in the ledger ``file``."""
    with reading(file) as connection:
        if connection is None:
            return
        for step, target, status, started, duration, worker in connection.execute(TASKS, (run,)):
            counts = facts.counts.setdefault(step, {})
            counts[status] = counts.get(status, 0) + 1
            if started is not None and duration is not None:
                where = redact(worker) if worker else "?"
                facts.timed.append(TaskRun(step, redact(target), started, duration, where))
        failed = [_failed(*row) for row in connection.execute(FAILURES, (run,))]
        first = {f.target: f.message for f in reversed(failed)}
        for g in group(failed, keep=GROUP_TARGETS):  # a group of one shows its own message
            own = first.get(g.targets[0]) if g.count == 1 and g.targets else None
            facts.failures.append(g if own is None else dataclasses.replace(g, message=own))


def _failed(step: str, error: str, target: str, path: str, traceback: str) -> Failed:
    return Failed(step, redact(error), redact(target), path, redact(traceback))


def slowest(timed: Sequence[TaskRun], n: int = SLOWEST) -> list[TaskRun]:
    """The ``n`` task runs that took longest, longest first."""
    return sorted(timed, key=lambda t: t.duration, reverse=True)[:n]
