"""Which items of mapped steps are done: resolution of families, level by level, in arrays.

Each family visited has one ``bytearray`` of item states (:data:`UNSEEN`, :data:`DONE`,
:data:`MISSING`, :data:`REWRITE`: missing though its target exists, called stale). A level
checks, per family, the indices passed down to it (one listing per folder); the items
still missing are passed down to the families they read, and the family's shared inputs
(plain nodes, computed once) go to the plain nodes' next level. Nothing below a done item
is looked at.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from pipex.core.bulk import Indices

UNSEEN, DONE, MISSING, REWRITE = 0, 1, 2, 3
SKIPPED = 4  #: to run, but left alone (``skip_failed``: it, or an input, failed last time)

#: Item states to 1 for the items to run, 0 otherwise (``bytes.translate``).
_RUNS = bytes([0, 0, 1, 1] + [0] * 252)
_FOUND = bytes([MISSING, DONE])  # exists -> state, by bool index


def missing_count(states: bytearray) -> int:
    """How many items of a family must run."""
    return states.count(MISSING) + states.count(REWRITE)


def runs(states: bytes | bytearray) -> bytes:
    """1 for each item that must run, 0 for the others."""
    return bytes(states.translate(_RUNS))


def to_run(states: bytes | bytearray) -> list[int]:
    """The indices of the items that must run."""
    return list(itertools.compress(range(len(states)), runs(states)))


class Levels:
    """The families of one resolution still to check, level by level."""

    def __init__(self, states: dict[Any, bytearray], check: bool, stale: Any) -> None:
        self.states = states
        self.check = check
        self.stale = stale
        self.pending: dict[Any, list[Indices]] = {}
        self.deps_added: set[int] = set()

    def __bool__(self) -> bool:
        return bool(self.pending)

    def add(self, family: Any, indices: Indices) -> None:
        if len(indices):
            self.pending.setdefault(family, []).append(indices)

    def add_one(self, family: Any, i: int) -> None:
        """Item ``i`` of ``family``, to check at the next level with the others added."""
        parts = self.pending.setdefault(family, [])
        last = parts[-1] if parts else None
        if not isinstance(last, _Picked):
            last = _Picked()
            parts.append(last)
        last.append(i)

    def step(self) -> list[Any]:
        """Check one level of families; the plain nodes the missing items need."""
        pending, self.pending = self.pending, {}
        nodes: list[Any] = []
        for family, parts in pending.items():
            states = self.states.get(family)
            if states is None:
                states = self.states[family] = bytearray(len(family))
            indices = _unseen(parts, states)
            if not len(indices):
                continue
            missing = self._check(family, indices, states)
            if not missing:
                continue
            for upstream in family.upstream:
                self.add(upstream, missing)
            if id(family) not in self.deps_added:
                self.deps_added.add(id(family))
                nodes.extend(family.deps)
        return nodes

    def _check(self, family: Any, indices: Indices, states: bytearray) -> list[int]:
        """Check ``indices`` of ``family``, set their states; the missing ones."""
        exists = family.exists(indices) if self.check else [False] * len(indices)
        written = exists
        if self.stale is not None and any(exists):
            found = [i for i, ok in zip(indices, exists, strict=True) if ok]
            verdicts = iter(self.stale([family.node(i) for i in found]))
            exists = [ok and not next(verdicts) for ok in exists]
        if type(indices) is range and indices == range(len(states)):
            states[:] = bytes(map(_FOUND.__getitem__, exists))
            if exists is not written:
                for i, (ok, was) in enumerate(zip(exists, written, strict=True)):
                    if was and not ok:
                        states[i] = REWRITE
            return to_run(states) if exists.count(False) else []
        missing: list[int] = []
        for i, ok, was in zip(indices, exists, written, strict=True):
            if ok:
                states[i] = DONE
            else:
                states[i] = REWRITE if was else MISSING
                missing.append(i)
        return missing


class _Picked(list[int]):
    """Items added one by one (:meth:`Levels.add_one`): the only part that grows."""


def _unseen(parts: Sequence[Indices], states: bytearray) -> Indices:
    """The indices among ``parts`` not checked yet, each once, in order."""
    if len(parts) == 1 and type(parts[0]) is range and not any(states):
        return parts[0]
    seen = set()
    out = []
    for part in parts:
        for i in part:
            if not states[i] and i not in seen:
                seen.add(i)
                out.append(i)
    out.sort()
    return out


def refuse_collisions(families: Sequence[Any], nodes: Sequence[Any], refuse: Any) -> None:
    """Call ``refuse(item_node, node)`` for each plain node whose target is that of an item
    of ``families`` (it raises unless they are the same call). A family's names are looked
    at only when some node lies in its folder."""
    by_folder: dict[tuple[Any, str], list[Any]] = {}
    for node in nodes:
        target = node.target
        folder = target.path.rpartition("/")[0]
        by_folder.setdefault((target.store, folder), []).append(node)
    for family in families:
        rendered, store = family.rendered()
        if rendered.folder is not None:
            near = by_folder.get((store, rendered.folder))
            if not near:
                continue
            index = {name: i for i, name in enumerate(rendered.names())}
            pairs = [(index.get(n.target.path.rpartition("/")[2]), n) for n in near]
        else:
            wanted = {n.target.path: n for group in by_folder.values() for n in group}
            found = [(i, wanted[p]) for i, p in enumerate(rendered.paths()) if p in wanted]
            pairs = [(i, n) for i, n in found if n.target.store == store]
        for i, node in pairs:
            if i is not None:
                refuse(family.node(i), node)
