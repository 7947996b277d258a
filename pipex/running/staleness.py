"""Opt-in staleness: when an existing target counts as missing, read from the run ledger.

With ``@pipex.task(version=...)``, a target whose latest ``ran`` record was written while
its step, or a step below it, had another version is stale. With the setting
``pipex.rerun: code``, so is one written while one of those steps had other code. Steps
are matched by name; a step of the record no longer below the node is not compared. A
target the ledger has no record of is done (Make semantics). Stale targets count as missing
during resolution: they run again, and so does everything above them, whose lineage
names the step that changed.

The ledger is read once per resolution level (one query per ledger file for the level's
existing targets, one for lineages not seen before), and not at all when neither opt-in is
in use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipex import settings
from pipex.core.plan import Stale
from pipex.running import records

RERUN = (None, "code")


def rerun_code() -> bool:
    """Whether the setting ``pipex.rerun`` is ``code`` (``ValueError`` for an unknown value)."""
    value = settings.get("rerun")
    if value not in RERUN:
        raise ValueError(
            f"the setting pipex.rerun is {value!r}; it takes null (a target that exists is "
            "done) or 'code' (rerun when a task's code changed)"
        )
    return value == "code"


def check(roots: Sequence[Any]) -> Stale | None:
    """The staleness check for resolving ``roots``, or ``None`` when no opt-in is in use
    (or ``pipex.ledger`` is false): then resolution does not read the ledger."""
    if not settings.get("ledger"):
        return None
    code = rerun_code()
    if not code and not any(node.versioned for node in roots):
        return None
    return Staleness(code)


class Staleness:
    """The :class:`~pipex.core.plan.Stale` check of one resolution."""

    def __init__(self, code: bool) -> None:
        self.code = code
        self.steps = Steps()
        self.verdicts: dict[str, bool] = {}  # lineage id -> stale
        self.known: dict[str, list[tuple[str, str | None, str]]] = {}

    def __call__(self, nodes: Sequence[Any]) -> list[bool]:
        wanted = [i for i, node in enumerate(nodes) if self.code or node.versioned]
        stale = [False] * len(nodes)
        if not wanted:
            return stale
        found = records.latest([nodes[i].target for i in wanted], status="ran")
        self._learn(nodes, wanted, found)
        for i, latest in zip(wanted, found, strict=True):
            if latest is not None:
                stale[i] = self._stale(nodes[i], latest.lineage)
        return stale

    def _learn(self, nodes: Sequence[Any], wanted: list[int], found: list[Any]) -> None:
        """Read the lineages not seen yet: one query per ledger file."""
        by_store: dict[Any, set[str]] = {}
        for i, latest in zip(wanted, found, strict=True):
            if latest is not None and latest.lineage not in self.known:
                by_store.setdefault(nodes[i].target.store, set()).add(latest.lineage)
        for store, ids in by_store.items():
            self.known.update(records.lineages(store, sorted(ids)))

    def _stale(self, node: Any, lineage: str) -> bool:
        verdict = self.verdicts.get(lineage)
        if verdict is None:
            verdict = self.verdicts[lineage] = any(
                self._changed(node, step) for step in self.known.get(lineage, ())
            )
        return verdict

    def _changed(self, node: Any, step: tuple[str, str | None, str]) -> bool:
        name, version, code = step
        task = self.steps.find(name, node)
        if task is None:
            return False
        if task.version is not None and version != task.version:
            return True
        return self.code and code != task.code


class Steps:
    """The current task of each step name, found by walking below nodes by identity (each
    node once per resolution; no target is rendered)."""

    def __init__(self) -> None:
        self.tasks: dict[str, Any] = {}
        self.seen: set[int] = set()

    def find(self, name: str, node: Any) -> Any:
        """The task named ``name`` at or below ``node`` (or met before), or ``None``."""
        task = self.tasks.get(name)
        if task is not None:
            return task
        stack = [node]
        while stack:
            top = stack.pop()
            if id(top) in self.seen:
                continue
            self.seen.add(id(top))
            self.tasks.setdefault(top.task.name, top.task)
            stack.extend(top.deps)
            if name in self.tasks:
                return self.tasks[name]
        return None
