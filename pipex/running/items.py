"""The run ledger's rows for the items of mapped steps, made a batch at a time.

Each item that ran, failed or did not run gets its own row, as a node does; what is the
same for every item of a step (its home store, lineage, version and code) is worked out
once per step, from the node of its first item.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipex.core.batch import Batch, BatchResult
from pipex.core.items import MISSING, REWRITE, SKIPPED, to_run
from pipex.core.outcomes import Failure, NotRun, Waited, one_line
from pipex.core.targets import Target
from pipex.redact import redact


class Steps:
    """What a ledger row of an item shares with the other items of its step."""

    def __init__(self, lineage: Any, home: Any) -> None:
        self.lineage = lineage  # node -> lineage id
        self.home = home  # node -> store of its ledger
        self.known: dict[int, tuple[Any, str]] = {}  # id(family) -> home store, lineage
        self.nodes: list[Any] = []  # kept alive: the lineages are remembered by node id

    def of(self, family: Any) -> tuple[Any, str]:
        found = self.known.get(id(family))
        if found is None:
            node = family.node(0)
            self.nodes.append(node)
            found = self.known[id(family)] = (self.home(node), self.lineage(node))
        return found


def pending(families: Mapping[Any, bytearray], steps: Steps) -> dict[Any, list[str]]:
    """The paths of the items each ledger's run will write, by home store."""
    by_store: dict[Any, list[str]] = {}
    for family, states in families.items():
        indices = to_run(states)
        if indices:
            rendered, _ = family.rendered()
            home, _ = steps.of(family)
            by_store.setdefault(home, []).extend(rendered.paths(indices))
    return by_store


def rows(
    run: str, steps: Steps, batch: Batch, result: BatchResult, finished: float
) -> dict[Any, list[tuple[Any, ...]]]:
    """The ledger rows of one batch, by home store (``(None, path)`` for an item waited
    for or found written: only its pending mark goes)."""
    other = {(s, p): outcome for s, p, outcome in result.outcomes}
    by_store: dict[Any, list[tuple[Any, ...]]] = {}
    for s, step in enumerate(batch.steps):
        family = batch.families[s]
        home, lineage = steps.of(family)
        task = step.task
        out = by_store.setdefault(home, [])
        starts, durations = result.starts[s], result.durations[s]
        for position, state in enumerate(step.states):
            if not state:
                continue
            path = step.paths[position]
            outcome = other.get((s, position))
            if isinstance(outcome, Waited):
                out.append((None, path))
                continue
            error = trace = None
            status = "ran"
            if isinstance(outcome, Failure):
                status = "failed"
                error = redact(one_line(outcome.exception))
                trace = redact(outcome.traceback) if outcome.traceback else outcome.traceback
            elif isinstance(outcome, NotRun):
                status = "not run"
                error = "an input failed: " + ", ".join(sorted(outcome.causes)[:3])
            started = starts[position] or None
            out.append(
                (
                    run,
                    path,
                    str(Target(path, step.store)),
                    task.name,
                    status,
                    started,
                    durations[position] if started else None,
                    finished,
                    result.worker or None,
                    error,
                    trace,
                    task.version,
                    task.code,
                    lineage,
                )
            )
    return by_store


def skip_failed(families: Mapping[Any, bytearray], steps: Steps, where: Any) -> int:
    """``skip_failed`` for mapped items: each item to run whose latest run failed (one
    read per ledger), and the items of the steps below that need it, left alone (state
    :data:`~pipex.core.items.SKIPPED`); how many."""
    skipped: dict[int, set[int]] = {}
    count = 0
    for family in reversed(list(families)):  # resolution found upstream steps last
        states = families[family]
        indices = to_run(states)
        if not indices:
            continue
        rendered, _ = family.rendered()
        failed = where(steps.of(family)[0], "status", ["failed"])
        out = {i for i, p in zip(indices, rendered.paths(indices), strict=True) if p in failed}
        for up in family.upstream:
            out.update(i for i in skipped.get(id(up), ()) if states[i] in (MISSING, REWRITE))
        for i in out:
            states[i] = SKIPPED
        skipped[id(family)] = out
        count += len(out)
    return count
