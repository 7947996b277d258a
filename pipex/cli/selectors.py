"""What ``pipex invalidate`` selects: ``--step``, ``--match`` and ``--from`` narrow each other.

Each selector given must hold for a target to be selected (as ``find`` tests, or
``pytest -k``); the values of one selector are alternatives. ``--match`` globs and the lines
of a ``--from`` file (``fnmatch`` rules: ``*`` also crosses ``/``) are matched against a
target's path in its store and its location (what ``pipex status --list`` prints); a
``--from`` line may also be a node's key (``step-path``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

GLOB = re.compile(r"[*?\[]")


@dataclass
class Selectors:
    """The selectors of one ``pipex invalidate``; ``unmatched``: the ``--from`` lines that
    matched no target of the graph, known after :meth:`select`."""

    steps: Sequence[str] = ()
    patterns: Sequence[str] = ()
    lines: Sequence[str] = ()
    unmatched: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.steps or self.patterns or self.lines)

    def select(self, nodes: Iterable[Any]) -> list[Any]:
        """Those of ``nodes`` every given selector selects."""
        tests: list[Callable[[Any], bool]] = []
        missing = set(self.lines)
        if self.lines:  # first: it also notes which lines name a target
            tests.append(_listed(self.lines, missing))
        if self.steps:
            steps = set(self.steps)
            tests.append(lambda node: node.task.name in steps)
        if self.patterns:
            tests.append(_globs(self.patterns))
        chosen = [node for node in nodes if all(test(node) for test in tests)]
        self.unmatched = [line for line in dict.fromkeys(self.lines) if line in missing]
        return chosen


def read_lines(file: IO[str] | None) -> list[str]:
    """The selections of a ``--from`` file: one per line; blank lines and ``#`` comments
    are skipped."""
    if file is None:
        return []
    lines = (line.strip() for line in file)
    return [line for line in lines if line and not line.startswith("#")]


def _listed(lines: Sequence[str], missing: set[str]) -> Callable[[Any], bool]:
    """Whether a ``--from`` line names a node (its path, location or key, or a glob
    matching them); the lines that do are taken out of ``missing``."""
    exact = {line for line in lines if not GLOB.search(line)}
    globs = {line: _globs([line]) for line in lines if GLOB.search(line)}
    anyglob = _globs(list(globs)) if globs else lambda node: False

    def listed(node: Any) -> bool:
        target = node.target
        found = [name for name in (target.path, str(target), node.key) if name in exact]
        if anyglob(node):
            found += [line for line, matches in globs.items() if matches(node)]
        missing.difference_update(found)
        return bool(found)

    return listed


def _globs(patterns: Sequence[str]) -> Callable[[Any], bool]:
    """Whether a node's target path or location matches one of ``patterns``."""
    match = re.compile("|".join(fnmatch.translate(p) for p in patterns)).match
    return lambda node: bool(match(node.target.path) or match(str(node.target)))
