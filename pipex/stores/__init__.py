"""Where targets live: the ``Store`` interface, its implementations, and the scheme registry.

A location without a scheme (or ``file://``) is a :class:`FileStore` folder; any protocol
fsspec knows is an :class:`FsspecStore` (fsspec is imported when one is first made). A new
store is one module plus one line in :data:`SCHEMES`.
"""

from __future__ import annotations

from pipex.stores.base import Store
from pipex.stores.file import FileStore
from pipex.stores.fsspec import FsspecStore
from pipex.stores.locations import SCHEMES, locate, store_for
from pipex.stores.memory import MemoryStore
from pipex.stores.sqlite import SQLiteStore

__all__ = [
    "SCHEMES",
    "FileStore",
    "FsspecStore",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "locate",
    "store_for",
]
