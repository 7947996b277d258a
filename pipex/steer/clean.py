"""Leftovers of past runs: temporaries a crash left beside targets, expired claims, and
the trash.

A temporary is a hidden file whose name holds :data:`~pipex.stores.atomic.TEMPORARY_MARK`;
it never counts as a target, but it takes space. An expired claim (``.<name>.pipex-claim``,
see :mod:`pipex.stores.claims`) is one whose runner is gone. Finding them needs a listing,
so only stores that can list (``glob``, as :class:`~pipex.stores.FileStore`) are searched,
and only in the folders of the graph's targets. Do not clean while a run writes there: its
temporaries are in use (its claims are live, and stay).
"""

from __future__ import annotations

import glob
import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipex.core.targets import Target
from pipex.steer import trash
from pipex.stores import claims, owners
from pipex.stores.atomic import TEMPORARY_MARK
from pipex.stores.base import Store


@dataclass
class Leftovers:
    """The temporaries, expired claims and trashed invalidations found for one graph."""

    temporaries: list[Target] = field(default_factory=list)
    claims: list[tuple[Target, str]] = field(default_factory=list)  #: (target, its owner)
    trash: dict[Store, list[trash.Entry]] = field(default_factory=dict)

    @property
    def trashed(self) -> int:
        """How many targets the trash holds."""
        return sum(len(e.paths) for entries in self.trash.values() for e in entries)

    def remove(self) -> None:
        """Delete the temporaries and expired claims, and empty the trash."""
        for target in self.temporaries:
            target.store.delete(target.path)
        for target, owner in self.claims:
            target.store.release(target.path, owner)
        for store, entries in self.trash.items():
            trash.forget(store, entries)


def leftovers(nodes: Iterable[Any]) -> Leftovers:
    """The temporaries and expired claims in the folders of ``nodes``' targets, and their
    stores' trash."""
    folders: defaultdict[Store, set[str]] = defaultdict(set)
    for node in nodes:
        target = node.target
        folders[target.store].add(target.parent)
    found = Leftovers()
    for store, parents in folders.items():
        listing = getattr(store, "glob", None)  # an optional listing, not a Store primitive
        if listing is not None:
            for parent in sorted(parents):
                pattern = posixpath.join(glob.escape(parent), f".*{TEMPORARY_MARK}*")
                found.temporaries += [Target(path, store) for path in listing(pattern)]
                pattern = posixpath.join(glob.escape(parent), f".*{claims.CLAIM_MARK}")
                found.claims += _expired(store, listing(pattern))
        entries = trash.entries(store)
        if entries:
            found.trash[store] = entries
    return found


def _expired(store: Store, paths: list[str]) -> list[tuple[Target, str]]:
    """The targets of the claims at ``paths`` that have expired, with their owners."""
    expired = []
    seconds = claims.timeout()
    for path in paths:
        target = claims.target_of(path)
        holder = store.claim_holder(target)
        if holder is not None and owners.expired(holder, seconds):
            expired.append((Target(target, store), holder[0]))
    return expired
