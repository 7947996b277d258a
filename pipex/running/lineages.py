"""Lineages: each node's step and every step below it, with their versions and code.

The run ledger records each target's lineage; the opt-in staleness checks compare a recorded
lineage with the current tasks of its steps (:mod:`pipex.running.staleness`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pipex.core.order import inputs_first
from pipex.core.tokens import token

Steps = frozenset[tuple[str, str | None, str]]


class Lineages:
    """The lineage of each node: its step and every step below it, with version and code.

    Computed by walking below nodes by identity (no target is rendered), each node once; a
    node whose task and inputs' lineages were seen before costs one lookup. A lineage is
    identified by a token of the node's step and the sorted steps.
    """

    def __init__(self) -> None:
        self._of: dict[int, str] = {}  # id(node) -> lineage id
        self._combined: dict[tuple[int, tuple[str, ...]], str] = {}  # task, inputs' lineages
        self._ids: dict[tuple[str, Steps], str] = {}
        self._steps: dict[str, tuple[str, Steps]] = {}

    def id(self, node: Any) -> str:
        """The lineage id of ``node``."""
        memo = self._of
        found = memo.get(id(node))
        if found is not None:
            return found
        for top in inputs_first(node, memo):
            key = (id(top.task), tuple([memo[id(dep)] for dep in top.deps]))
            lineage = self._combined.get(key)
            if lineage is None:
                lineage = self._combined[key] = self._new(top.task, key[1])
            memo[id(top)] = lineage
        return memo[id(node)]

    def rows(self, ids: Iterable[str]) -> list[tuple[str, str, str]]:
        """``(id, step, steps as JSON)`` for the lineage ``ids``."""
        return [
            (i, self._steps[i][0], json.dumps(sorted(self._steps[i][1], key=_name_first)))
            for i in ids
        ]

    def _new(self, task: Any, inputs: tuple[str, ...]) -> str:
        steps = {(task.name, task.version, task.code)}
        for lineage in inputs:
            steps.update(self._steps[lineage][1])
        key = (task.name, frozenset(steps))
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = token(key[0], sorted(key[1], key=_name_first))[:20]
            self._steps[found] = key
        return found


def _name_first(step: tuple[str, str | None, str]) -> tuple[str, str, str]:
    return (step[0], step[1] or "", step[2])
