"""From a location to its store: the scheme registry, ``store_for`` and ``locate``.

A location without a scheme (or ``file://``) is a :class:`FileStore` folder; any other
protocol fsspec knows is an :class:`FsspecStore`, loaded only when a location names it.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from pipex import registry
from pipex.stores.base import Store
from pipex.stores.file import FileStore

#: URL scheme -> the store class that serves it, by import string.
SCHEMES: dict[str, str] = {"file": "pipex.stores.file:FileStore"}

#: The store of every scheme not in :data:`SCHEMES` (it refuses protocols fsspec lacks).
FSSPEC = "pipex.stores.fsspec:FsspecStore"


def store_for(location: Store | str | os.PathLike[str]) -> Store:
    """The store for ``location``: a :class:`Store` as it is, else chosen by URL scheme.

    ``"out"``, ``"/data/out"`` and ``"file:///data/out"`` are :class:`FileStore` folders;
    ``"s3://bucket/root"`` is an :class:`FsspecStore`. A scheme fsspec does not know, or whose
    package is not installed, is a :class:`~pipex.StoreError` (never a local folder named
    ``s3:``).
    """
    if isinstance(location, Store):
        return location
    if not isinstance(location, (str, os.PathLike)):
        raise TypeError(f"store must be a pipex Store or a folder, not {type(location).__name__}")
    text = os.fspath(location)
    scheme, separator, _ = text.partition("://")
    if not separator:
        return FileStore(text)
    cls: Any = registry.load(SCHEMES.get(scheme, FSSPEC))
    return cls(text)


def locate(location: str, store: Store | None) -> tuple[Store | None, str]:
    """Where a rendered ``location`` lives: ``(store, path inside it)``.

    A plain path stays in ``store``. A URL stays in ``store`` when it lies under the store's
    root (so the store's options apply); otherwise it lives in the store of its protocol
    and bucket (``s3://bucket/run1/x.pkl`` -> the store of ``s3://bucket``, ``run1/x.pkl``).
    A ``file://`` URL is the local path it names.
    """
    scheme, separator, rest = location.partition("://")
    if not separator:
        return store, location
    if scheme == "file":
        return store, rest
    inner = store.relative(location) if store is not None else None
    if inner is not None:
        return store, inner
    bucket, _, inner = rest.partition("/")
    return _root_store(f"{scheme}://{bucket}"), inner


@functools.lru_cache(maxsize=64)
def _root_store(url: str) -> Store:
    """One store per root URL, so the targets under it are checked together."""
    return store_for(url)
