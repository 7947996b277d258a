"""``MemoryStore``: targets in this process's memory, for testing pipelines."""

from __future__ import annotations

import uuid
from typing import Any

from pipex.stores.fsspec import FsspecStore


class MemoryStore(FsspecStore):
    """Targets kept in memory, in fsspec's in-memory filesystem: nothing touches the disk.

    Each ``MemoryStore()`` is a new, empty namespace (``name`` picks one to share). The
    memory is per process: a copy of the store (pickled, or passed to threads) sees the same
    targets in the same process, so it works with dask's threaded and synchronous
    schedulers; worker processes of a cluster see none of them.
    """

    __slots__ = ("name",)

    def __init__(self, name: str | None = None) -> None:
        self.name = name if name is not None else uuid.uuid4().hex
        super().__init__(f"memory://pipex-{self.name}")

    def __repr__(self) -> str:
        return f"MemoryStore({self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (MemoryStore, (self.name,))

    def clear(self) -> None:
        """Remove every target of this store."""
        self.delete("")
