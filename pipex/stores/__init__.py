"""Where targets live: the ``Store`` interface, its implementations, and the scheme registry.

A location without a scheme (or ``file://``) is a :class:`FileStore` folder. A new store is
one module plus one line in :data:`SCHEMES`.
"""

from __future__ import annotations

import os
from typing import Any

from pipex import registry
from pipex.exceptions import StoreError
from pipex.stores.base import Store
from pipex.stores.file import FileStore

#: URL scheme -> the store class that serves it, by import string.
SCHEMES: dict[str, str] = {"file": "pipex.stores.file:FileStore"}

__all__ = ["SCHEMES", "FileStore", "Store", "store_for"]


def store_for(location: Store | str | os.PathLike[str]) -> Store:
    """The store for ``location``: a :class:`Store` as it is, else chosen by URL scheme.

    ``"out"``, ``"/data/out"`` and ``"file:///data/out"`` are :class:`FileStore` folders; a
    scheme not in :data:`SCHEMES` is a :class:`StoreError` (never a local folder named
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
    cls: Any = registry.load(SCHEMES[scheme]) if scheme in SCHEMES else None
    if cls is None:
        raise StoreError(
            f"no pipex store serves {scheme}:// locations ({text!r}); pipex knows "
            f"{', '.join(s + '://' for s in SCHEMES)}. Use a local folder, or pass a Store "
            "object as store=."
        )
    return cls(text)
