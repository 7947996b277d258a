"""Where targets live: the ``Store`` interface and its implementations."""

from pipex.stores.base import Store
from pipex.stores.file import FileStore

__all__ = ["FileStore", "Store"]
