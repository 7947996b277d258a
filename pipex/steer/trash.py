"""The trash of a store: where invalidated targets go, so the last invalidation can be undone.

Written on the :class:`~pipex.stores.base.Store` interface only (``exists_many``, ``open``,
``delete``, and ``save`` and ``temporary``, which stage and commit), so every store has
one, without a method of its own. Under the store root::

    .pipex-trash/index.json             the invalidations, oldest first: id, time, paths,
                                        the run ledger's row of each path
    .pipex-trash/<id>/<target path>     the bytes each one removed

Moving a target copies its bytes into the trash, records the invalidation in the index, and
only then deletes the target: a crash at any point loses nothing. The index is read, changed
and written while holding the store's claim on it (:mod:`pipex.stores.claims`: a file made
with ``O_EXCL`` on local folders, a conditional create on object stores that offer one, a
row in SQLite), so invalidations at once from several processes lose no entry; stores that
cannot create exclusively (``MemoryStore``, object stores without conditional writes) grant
every claim, and two processes there may still race. A damaged index is a
:class:`~pipex.exceptions.StoreError` naming it; :func:`salvage` finds the invalidations from
the trash's files instead (stores that can list), so ``pipex clean`` can still empty it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipex.exceptions import StoreError
from pipex.stores import claims
from pipex.stores.base import Store

FOLDER = ".pipex-trash"
INDEX = f"{FOLDER}/index.json"


@dataclass(frozen=True)
class Entry:
    """One invalidation in one store's trash."""

    id: str
    time: float
    paths: list[str]
    #: the run ledger's row of each path when it was moved (see pipex.running.recorded)
    ledger: dict[str, Any] = field(default_factory=dict)

    def trashed(self, path: str) -> str:
        """Where ``path``'s bytes are kept in the trash."""
        return f"{FOLDER}/{self.id}/{path.lstrip('/')}"


def new_id() -> str:
    """A fresh invalidation id: sortable by time, unique."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(4).hex()


def entries(store: Store) -> list[Entry]:
    """The invalidations kept in ``store``'s trash, oldest first (``StoreError`` if the index
    is damaged)."""
    try:
        with store.open(INDEX) as file:
            data = json.load(file)
        return [
            Entry(e["id"], e["time"], e["paths"], e.get("ledger", {}))
            for e in data["invalidations"]
        ]
    except FileNotFoundError:
        return []
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(
            f"the trash index {store.location(INDEX)} is damaged ({type(exc).__name__}: "
            f"{exc}), so pipex cannot tell which invalidation to restore or add to it. Empty "
            "the trash with `pipex clean ENTRY` (pipex.steer.clean.leftovers(...).remove()), "
            f"or delete the index to forget its invalidations (their files stay in {FOLDER}/)"
        ) from exc


def salvage(store: Store) -> list[Entry]:
    """The invalidations in ``store``'s trash, found from its files, not from its index (for a
    damaged index): one per folder, with no time. Empty for stores that cannot list."""
    listing = getattr(store, "glob", None)  # an optional listing, not a Store primitive
    if listing is None:
        return []
    found: dict[str, list[str]] = {}
    for path in listing(f"{FOLDER}/*/**"):
        _, entry_id, rest = path.split("/", 2) if path.count("/") >= 2 else (path, "", "")
        if rest:
            found.setdefault(entry_id, []).append(rest)
    return [Entry(entry_id, 0.0, paths) for entry_id, paths in sorted(found.items())]


def move(
    store: Store, paths: Sequence[str], entry_id: str, ledger: dict[str, Any] | None = None
) -> Entry:
    """Move the targets at ``paths`` into the trash as one invalidation (``ledger``: what
    to keep with it of their run ledger rows)."""
    entry = Entry(entry_id, time.time(), list(paths), ledger or {})
    copied: list[str] = []
    try:
        for path in paths:
            copy(store, path, entry.trashed(path))
            copied.append(entry.trashed(path))
        with claims.held(store, INDEX, rewrite=True):
            _write(store, [*entries(store), entry])
    except BaseException:
        for path in copied:
            store.delete(path)
        _prune(store, f"{FOLDER}/{entry.id}")
        raise
    for path in paths:
        store.delete(path)
    return entry


def restore(store: Store, entry: Entry) -> list[str]:
    """Put back the bytes of one invalidation (over any newer target), then forget it."""
    kept = store.exists_many([entry.trashed(p) for p in entry.paths])
    restored = [path for path, ok in zip(entry.paths, kept, strict=True) if ok]
    for path in restored:
        copy(store, entry.trashed(path), path)
    forget(store, [entry])
    return restored


def forget(store: Store, gone: Iterable[Entry]) -> None:
    """Delete these invalidations' bytes and drop them from the index (a damaged index is
    dropped whole: its entries are what :func:`salvage` found)."""
    gone = list(gone)
    ids = {entry.id for entry in gone}
    with claims.held(store, INDEX, rewrite=True):
        try:
            kept = [entry for entry in entries(store) if entry.id not in ids]
        except StoreError:
            kept = []
        if kept:
            _write(store, kept)
        else:
            store.delete(INDEX)
    for entry in gone:
        for path in entry.paths:
            store.delete(entry.trashed(path))
        _prune(store, f"{FOLDER}/{entry.id}")


def copy(store: Store, source: str, destination: str) -> None:
    """Copy the bytes of ``source`` to ``destination`` in ``store``, committed whole."""
    with (
        store.open(source) as src,
        store.temporary(destination) as local,
        open(local, "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)


def _prune(store: Store, folder: str) -> None:
    """Remove the empty folders an invalidation leaves in a local store's trash."""
    try:
        top = store.fspath(folder)
    except TypeError:
        return  # object stores have no folders
    for here, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):  # not empty
            os.rmdir(here)
    with contextlib.suppress(OSError):
        os.rmdir(store.fspath(FOLDER))


def _write(store: Store, kept: list[Entry]) -> None:
    store.save(INDEX, {"invalidations": [vars(entry) for entry in kept]})
