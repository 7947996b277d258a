"""Opt-in staleness: when an existing target counts as missing, read from the run ledger.

With ``@pipex.task(version=...)``, a target whose latest ``ran`` record was written while
its step, or a step below it, had another version is stale. With the setting
``pipex.rerun: code``, so is one written while one of those steps had other code. Steps
are matched by name; a step of the record no longer below the node is not compared. A
target that a run may have written but never recorded (a run killed before its buffered
outcomes reached the ledger: :mod:`pipex.running.runs`) has no known version: it is stale
too. A target that a run still running is writing, and whose stamp (``Store.stamp``)
changed since that run saw it, was written by that run: its record is on its way, so it is
not judged by the ledger's older record (two runners started together after a version
bump do not both rewrite it); a store without stamps keeps the ledger's word. A target the
ledger has no record of at all is done (Make semantics). Stale targets
count as missing during resolution: they run again, and so does everything above them,
whose lineage names the step that changed.

The ledger is read once or twice per resolution level and ledger file (the lineages of the
level's steps; the targets of stale lineages, only when there are some), plus once per
resolution and ledger file for the targets of unknown version and those being written,
never target by target (a stamp is read only for a stale target that a running run is
writing), and not at all when neither opt-in is in use.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any

from pipex import settings
from pipex.core.family import Family
from pipex.core.plan import Stale
from pipex.running import records
from pipex.running.ledger import home

RERUN = (None, "code")


def rerun_code() -> bool:
    """Whether the setting ``pipex.rerun`` is ``code`` (``ModeError`` for an unknown value)."""
    value = settings.choice(
        "rerun",
        RERUN,
        "null (a target that exists is done) or 'code' (rerun when a task's code changed)",
    )
    return bool(value == "code")


def check(roots: Sequence[Any]) -> Stale | None:
    """The staleness check for resolving ``roots``, or ``None`` when no opt-in is in use
    (or ``pipex.ledger`` is false): then resolution does not read the ledger."""
    if not settings.get("ledger"):
        return None
    code = rerun_code()
    if not code and not any(node.versioned for node in roots):
        _dropped_versions(roots)
        return None
    return Staleness(code)


def _dropped_versions(roots: Sequence[Any]) -> None:
    """Warn, once per step, of a step with no ``version`` now whose targets the ledger
    recorded with one: removing ``version=`` turns its staleness check off (one query per
    ledger file, on the lineages of the roots' steps, which name every step below them)."""
    by_store: dict[Any, dict[str, Any]] = {}
    for node in roots:
        if isinstance(node, Family):  # a mapped step: its first item stands for its steps
            if not len(node):
                continue
            node = node.node(0)
        by_store.setdefault(home(node), {}).setdefault(node.task.name, node)
    for store, example in by_store.items():
        steps = Steps()
        for _, step, below in records.lineages(store, list(example)):
            for name, version, _ in below:
                if version is None:
                    continue
                task = steps.find(name, example[step])
                if task is not None and task.version is None:
                    _warn_dropped(name, str(version))


@functools.cache
def _warn_dropped(step: str, version: str) -> None:
    warnings.warn(
        f"step {step} has no version now, but the run ledger recorded its targets with "
        f"version={version!r}: without version=, a version change no longer reruns them "
        "(the check is off). Keep version= on the task (bump it to rerun), or ignore this if "
        "dropping it was meant.",
        UserWarning,
        stacklevel=3,
    )


class Staleness:
    """The :class:`~pipex.core.plan.Stale` check of one resolution.

    Per level and ledger file: one query for the lineages of the level's steps not read
    before; each lineage is judged once (against the current tasks of its steps); only when
    some lineage is stale, one query for the targets whose latest run has it.
    """

    def __init__(self, code: bool) -> None:
        self.code = code
        self.steps = Steps()
        self.lineages: dict[Any, dict[str, list[tuple[str, list[Any]]]]] = {}
        self.verdicts: dict[str, bool] = {}  # lineage id -> stale
        self.orphans: dict[Any, set[str]] = {}  # store -> paths of unknown version
        self.writing: dict[Any, dict[str, str]] = {}  # store -> path -> stamp a run saw

    def __call__(self, nodes: Sequence[Any]) -> list[bool]:
        by_store: dict[Any, list[int]] = {}
        for i, node in enumerate(nodes):
            if self.code or node.versioned:
                by_store.setdefault(home(node), []).append(i)
        stale = [False] * len(nodes)
        for store, indexes in by_store.items():
            bad = self._stale_lineages(store, [nodes[i] for i in indexes])
            paths = records.where(store, "lineage", bad) if bad else set()
            orphans = self.orphans.get(store)
            if orphans is None:
                orphans, self.writing[store] = records.pending(store)
                self.orphans[store] = orphans
            writing = self.writing[store]
            if paths or orphans:
                for i in indexes:
                    target = nodes[i].target
                    path = target.path
                    stale[i] = path in orphans or (
                        path in paths and not _rewritten(target, writing.get(path))
                    )
        return stale

    def _stale_lineages(self, store: Any, nodes: list[Any]) -> list[str]:
        """The ids of the lineages of ``nodes``' steps that are stale now."""
        example: dict[str, Any] = {}
        for node in nodes:
            example.setdefault(node.task.name, node)
        known = self.lineages.setdefault(store, {})
        new = [name for name in example if name not in known]
        for name in new:
            known[name] = []
        for lineage, step, steps in records.lineages(store, new) if new else ():
            known[step].append((lineage, steps))
        bad = []
        for name, node in example.items():
            for lineage, steps in known[name]:
                verdict = self.verdicts.get(lineage)
                if verdict is None:
                    verdict = any(self._changed(node, step) for step in steps)
                    self.verdicts[lineage] = verdict
                if verdict:
                    bad.append(lineage)
        return bad

    def _changed(self, node: Any, step: tuple[str, str | None, str]) -> bool:
        name, version, code = step
        task = self.steps.find(name, node)
        if task is None:
            return False
        if task.version is not None and version != task.version:
            return True
        return self.code and code != task.code


def _rewritten(target: Any, seen: str | None) -> bool:
    """Whether ``target``, which a running run saw with the stamp ``seen`` (``""``: missing),
    was written since: that run wrote it (or a runner it waited for did), and its record is
    not in the ledger yet. ``False`` when either stamp is unknown."""
    if seen is None:
        return False
    stamp = getattr(target.store, "stamp", None)
    now = stamp(target.path) if stamp is not None else None
    return now is not None and now != seen


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
