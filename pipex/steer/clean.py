"""Leftovers of past runs: temporaries a crash left beside targets or in the local staging
folder, expired claims, the trash, and the trash folders of invalidations cut short.

A temporary is a hidden file whose name holds :data:`~pipex.stores.atomic.TEMPORARY_MARK`;
it never counts as a target, but it takes space. Stores that are not local folders (S3,
SQLite) stage writes in a local folder (:func:`~pipex.stores.atomic.staging_folder`): the
files there of writers of this host that are gone are leftovers too. An expired claim (see
:mod:`pipex.stores.claims`) is one whose runner is gone. Finding claims needs a listing:
stores that can list (``glob``: :class:`~pipex.stores.FileStore`, ``FsspecStore``) or list
their claims (``claimed``: ``SQLiteStore``) are searched, in the folders of the graph's
targets. Do not clean while a run writes there: its temporaries are in use (its claims are
live, and stay).
"""

from __future__ import annotations

import glob
import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipex.core.targets import Target
from pipex.exceptions import StoreError
from pipex.steer import trash
from pipex.stores import claims, owners
from pipex.stores.atomic import TEMPORARY_MARK, abandoned_staged, discard
from pipex.stores.base import Store


@dataclass
class Leftovers:
    """The temporaries, expired claims and trashed invalidations found for one graph."""

    temporaries: list[Target] = field(default_factory=list)
    claims: list[tuple[Target, str]] = field(default_factory=list)  #: (target, its owner)
    staged: list[str] = field(default_factory=list)  #: local files of writers that are gone
    #: trash folders of invalidations cut short (a killed ``pipex invalidate``)
    orphans: dict[Store, list[trash.Orphan]] = field(default_factory=dict)
    trash: dict[Store, list[trash.Entry]] = field(default_factory=dict)

    @property
    def trashed(self) -> int:
        """How many targets the trash holds."""
        return sum(len(e.paths) for entries in self.trash.values() for e in entries)

    @property
    def orphaned(self) -> int:
        """How many bytes the trash folders of invalidations cut short take."""
        return sum(o.size for orphans in self.orphans.values() for o in orphans)

    def remove(self) -> None:
        """Delete the temporaries and expired claims, and empty the trash."""
        for target in self.temporaries:
            target.store.delete(target.path)
        for staged in self.staged:
            discard(staged)
        for target, owner in self.claims:
            target.store.release(target.path, owner)
        for store, entries in self.trash.items():
            trash.forget(store, entries)
        for store, orphans in self.orphans.items():
            for orphan in orphans:
                trash.remove_orphan(store, orphan)


def leftovers(nodes: Iterable[Any]) -> Leftovers:
    """The temporaries and expired claims in the folders of ``nodes``' targets, and their
    stores' trash."""
    folders: defaultdict[Store, set[str]] = defaultdict(set)
    for node in nodes:
        target = node.target
        folders[target.store].add(target.parent)
    found = Leftovers(staged=abandoned_staged() if folders else [])
    for store, parents in folders.items():
        listing = getattr(store, "glob", None)  # an optional listing, not a Store primitive
        for parent in sorted(parents):
            if listing is not None:
                pattern = posixpath.join(glob.escape(parent), f".*{TEMPORARY_MARK}*")
                found.temporaries += [Target(path, store) for path in listing(pattern)]
            found.claims += _expired(store, _claimed(store, parent))
        try:
            entries = trash.entries(store)
            orphans = trash.orphans(store)
        except StoreError:  # a damaged index: the trashed files are still there
            entries, orphans = trash.salvage(store), []
        if entries:
            found.trash[store] = entries
        if orphans:
            found.orphans[store] = orphans
    return found


def _claimed(store: Store, folder: str) -> list[str]:
    """The targets of ``folder`` that have a claim: from the store's list of its claims
    (``claimed``), or a listing of its claim files (``glob``); none where it has neither."""
    claimed = getattr(store, "claimed", None)
    if claimed is not None:
        return list(claimed(folder))
    listing = getattr(store, "glob", None)
    if listing is None:
        return []
    pattern = posixpath.join(glob.escape(folder), f".*{claims.CLAIM_MARK}")
    return [claims.target_of(path) for path in listing(pattern)]


def _expired(store: Store, targets: list[str]) -> list[tuple[Target, str]]:
    """Those of the claimed ``targets`` whose claim has expired, with their owners."""
    expired = []
    seconds = claims.timeout()
    for target in targets:
        holder = store.claim_holder(target)
        if holder is not None and owners.expired(holder, seconds):
            expired.append((Target(target, store), holder[0]))
    return expired
