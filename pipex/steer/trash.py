"""The trash of a store: where invalidated targets go, so the last invalidation can be undone.

Written on the :class:`~pipex.stores.base.Store` interface only (``exists_many``, ``open``,
``delete``, and ``save`` and ``temporary``, which stage and commit), so every store has
one, without a method of its own. Under the store root::

    .pipex-trash/index.json             the invalidations, oldest first: id, time, paths,
                                        the run ledger's row of each path
    .pipex-trash/<id>/<target path>     the bytes each one removed

Moving a target copies its bytes into the trash, records the invalidation in the index, and
only then deletes the target: a crash at any point loses nothing. A crash before the index
names the invalidation leaves a folder that no entry names, an :class:`Orphan` (full copies
and a partial temporary: only space); :func:`orphans` finds those whose writer is gone,
``pipex clean`` removes them, and :func:`restore` never sees them (it reads the index).

The index is read, changed and written while holding the store's claim on it
(:mod:`pipex.stores.claims`: a file made with ``O_EXCL`` on local folders, a conditional
create on object stores that offer one, a row in SQLite), so invalidations at once from
several processes lose no entry; stores that cannot create exclusively (``MemoryStore``,
object stores without conditional writes) grant every claim, and two processes there may
still race. A damaged index is a :class:`~pipex.exceptions.StoreError` naming it;
:func:`salvage` finds the invalidations from the trash's files instead (stores that can
list), so ``pipex clean`` can still empty it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipex.exceptions import StoreError
from pipex.stores import claims
from pipex.stores.atomic import gone, host_id
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
    #: the root of the ledger of each path whose ledger is not its store's own (an absolute
    #: target under an absolute ``{path}`` root: pipex.running.ledger.home)
    homes: dict[str, str] = field(default_factory=dict)

    def trashed(self, path: str) -> str:
        """Where ``path``'s bytes are kept in the trash."""
        return f"{FOLDER}/{self.id}/{path.lstrip('/')}"


def new_id() -> str:
    """A fresh invalidation id: sortable by time, unique, naming its writer (host and
    process), so that a folder of one cut short is told from one being written."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{host_id()}-{os.getpid()}-{os.urandom(4).hex()}"


_ID = re.compile(r"\d{8}T\d{6}-([0-9a-f]{8})-(\d+)-[0-9a-f]{8}")


@dataclass(frozen=True)
class Orphan:
    """A trash folder that no invalidation of the index names: its invalidation was cut
    short (killed while copying targets into the trash, or while its entry was forgotten).
    Its targets were never removed (or are already back), so it is only space, in ``size``
    bytes: ``pipex clean`` removes it, :func:`restore` never uses it."""

    id: str
    files: list[str]
    size: int

    @property
    def folder(self) -> str:
        return f"{FOLDER}/{self.id}"


def orphans(store: Store) -> list[Orphan]:
    """The trash folders of ``store`` that the index does not name and whose writer is gone
    (one of this host that no longer runs, or an id without a writer, from an older pipex);
    a folder another host may still be writing is left. ``StoreError`` if the index is
    damaged (then every folder is what :func:`salvage` finds)."""
    listed = _folders(store)
    if not listed:
        return []
    named = {entry.id for entry in entries(store)}
    found = []
    for entry_id, (files, size) in sorted(listed.items()):
        match = _ID.fullmatch(entry_id)
        if entry_id in named or (match and not gone(match.group(1), int(match.group(2)))):
            continue
        found.append(Orphan(entry_id, files, size))
    return found


def remove_orphan(store: Store, orphan: Orphan) -> None:
    """Delete an invalidation cut short: its folder in the trash, partial files included."""
    try:
        shutil.rmtree(store.fspath(orphan.folder), ignore_errors=True)
    except TypeError:  # object stores have no folders
        for path in orphan.files:
            store.delete(path)
    _prune(store, orphan.folder)


def _folders(store: Store) -> dict[str, tuple[list[str], int]]:
    """Every folder of the trash: its files (hidden temporaries included) and their size."""
    found: dict[str, tuple[list[str], int]] = {}
    try:
        top = store.fspath(FOLDER)
    except TypeError:
        listing = getattr(store, "glob", None)  # an optional listing, not a Store primitive
        if listing is None:
            return {}
        for path in listing(f"{FOLDER}/*/**"):
            _, entry_id, rest = path.split("/", 2) if path.count("/") >= 2 else (path, "", "")
            if rest:
                found.setdefault(entry_id, ([], 0))[0].append(path)
        return {key: (files, _size(store, files)) for key, (files, _) in found.items()}
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for item in os.scandir(top):
            if not item.is_dir(follow_symlinks=False):
                continue
            files, size = [], 0
            for here, _, names in os.walk(item.path):
                for name in names:
                    full = os.path.join(here, name)
                    files.append(f"{FOLDER}/{os.path.relpath(full, top).replace(os.sep, '/')}")
                    with contextlib.suppress(OSError):
                        size += os.lstat(full).st_size
            found[item.name] = (sorted(files), size)
    return found


def _size(store: Store, paths: list[str]) -> int:
    """The bytes of ``paths`` in an object store (0 where it cannot tell)."""
    filesystem = getattr(store, "filesystem", None)
    if filesystem is None:
        return 0
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += filesystem.size(store.location(path)) or 0
    return total


def entries(store: Store) -> list[Entry]:
    """The invalidations kept in ``store``'s trash, oldest first (``StoreError`` if the index
    is damaged)."""
    try:
        with store.open(INDEX) as file:
            data = json.load(file)
        return [
            Entry(e["id"], e["time"], e["paths"], e.get("ledger", {}), e.get("homes", {}))
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
    store: Store,
    paths: Sequence[str],
    entry_id: str,
    ledger: dict[str, Any] | None = None,
    homes: dict[str, str] | None = None,
) -> Entry:
    """Move the targets at ``paths`` into the trash as one invalidation (``ledger``: what
    to keep with it of their run ledger rows; ``homes``: the roots of their ledgers, where
    not the store's)."""
    entry = Entry(entry_id, time.time(), list(paths), ledger or {}, homes or {})
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
