"""Leftovers of past runs: temporaries a crash left beside targets, and the trash.

A temporary is a hidden file whose name holds :data:`~pipex.stores.atomic.TEMPORARY_MARK`;
it never counts as a target, but it takes space. Finding them needs a listing, so only
stores that can list (``glob``, as :class:`~pipex.stores.FileStore`) are searched, and
only in the folders of the graph's targets. Do not clean while a run writes there: its
temporaries are in use.
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
from pipex.stores.atomic import TEMPORARY_MARK
from pipex.stores.base import Store


@dataclass
class Leftovers:
    """The temporaries and trashed invalidations found for one graph."""

    temporaries: list[Target] = field(default_factory=list)
    trash: dict[Store, list[trash.Entry]] = field(default_factory=dict)

    @property
    def trashed(self) -> int:
        """How many targets the trash holds."""
        return sum(len(e.paths) for entries in self.trash.values() for e in entries)

    def remove(self) -> None:
        """Delete the temporaries and empty the trash."""
        for target in self.temporaries:
            target.store.delete(target.path)
        for store, entries in self.trash.items():
            trash.forget(store, entries)


def leftovers(nodes: Iterable[Any]) -> Leftovers:
    """The temporaries in the folders of ``nodes``' targets, and their stores' trash."""
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
        entries = trash.entries(store)
        if entries:
            found.trash[store] = entries
    return found
