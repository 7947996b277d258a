"""``pipex.Target``: where one task's output lives, a path inside a store."""

from __future__ import annotations

import posixpath
from typing import Any

from pipex.redact import redact
from pipex.stores import FileStore, Store


class Target:
    """A task's output location: a ``path`` inside a ``store``.

    ``str(target)`` is the full location (credentials in a URL shown as ``***``);
    ``os.fspath(target)`` works for local stores.
    """

    __slots__ = ("path", "store")

    def __init__(self, path: str, store: Store | None = None) -> None:
        if store is None:
            store = FileStore()
        self.path = path
        self.store = store

    def exists(self) -> bool:
        """Whether the target has been written."""
        return self.store.exists(self.path)

    def load(self) -> Any:
        """Read the target's data with the serializer its suffix names."""
        return self.store.load(self.path)

    @property
    def name(self) -> str:
        """The last component of the path (``page-001.pkl``)."""
        return posixpath.basename(self.path)

    @property
    def stem(self) -> str:
        """The name without its suffix (``page-001``)."""
        return posixpath.splitext(self.name)[0]

    @property
    def suffix(self) -> str:
        """The name's suffix (``.pkl``)."""
        return posixpath.splitext(self.path)[1]

    @property
    def parent(self) -> str:
        """The folder part of the path."""
        return posixpath.dirname(self.path)

    def __fspath__(self) -> str:
        return self.store.fspath(self.path)

    def __str__(self) -> str:
        try:
            return self.store.fspath(self.path)
        except TypeError:
            return redact(self.store.location(self.path))

    def __repr__(self) -> str:
        return f"Target({redact(self.path)!r}, store={self.store!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Target) and other.path == self.path and other.store == self.store

    def __hash__(self) -> int:
        return hash((self.path, self.store))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Target, (self.path, self.store))

    def __dask_tokenize__(self) -> tuple[str, str, str]:
        return ("pipex.Target", self.path, repr(self.store))
