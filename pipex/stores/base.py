"""``Store``: where targets live. Subclasses implement five primitives; the rest is shared.

The primitives: :meth:`~Store.exists_many`, :meth:`~Store.open`, :meth:`~Store.stage`,
:meth:`~Store.commit` and :meth:`~Store.delete`. Saving, loading and the temporary path of a
``save=False`` task are written once, in :mod:`pipex.stores.atomic`, on top of them. (A
store may instead override ``load``, ``save`` and ``temporary`` themselves, as stores
written before the primitives did; only ``exists_many`` and ``delete`` are required.)

Claims (:meth:`~Store.claim`, :meth:`~Store.claim_holder`, :meth:`~Store.refresh_claim`,
:meth:`~Store.release`) are optional: a store that can create a file exclusively implements
them and sets :attr:`~Store.exclusive_claims`; any other grants every claim.
"""

from __future__ import annotations

import abc
import contextlib
from collections import defaultdict
from collections.abc import Sequence
from typing import IO, Any

from pipex.stores import atomic


class Store(abc.ABC):
    """A place that holds targets, addressed by path strings.

    Every write is staged in a local temporary file and committed whole, so a crash never
    leaves a partial target. Stores are small and picklable: they travel to workers with
    each task.
    """

    __slots__ = ()

    # -- primitives ----------------------------------------------------------------------------

    @abc.abstractmethod
    def exists_many(self, paths: Sequence[str]) -> list[bool]:
        """Whether each path holds a finished target, checked in as few calls as possible."""

    def open(self, path: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """The finished target at ``path`` for reading; ``FileNotFoundError`` if none."""
        raise self._missing("open")

    def stage(self, path: str) -> tuple[str, IO[bytes]]:
        """A new, empty local file (its path and the file open for writing) to become ``path``."""
        raise self._missing("stage")

    def commit(self, staged: str, path: str) -> None:
        """Make the finished local file ``staged`` the target at ``path``, all at once."""
        raise self._missing("commit")

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Remove the target at ``path``; nothing happens when there is none."""

    # -- claims (optional: see pipex.stores.claims) -----------------------------------------

    #: Whether :meth:`claim` is exclusive here. A store that leaves it ``False`` grants every
    #: claim, so two runners on it may both write a target (each write stays atomic).
    exclusive_claims: bool = False

    def claim(self, path: str, owner: str) -> bool:
        """Create the claim on ``path`` for ``owner`` unless one exists; whether it did."""
        return True

    def claim_holder(self, path: str) -> tuple[str, float] | None:
        """The owner of the claim on ``path`` and its last heartbeat (``time.time()``)."""
        return None

    def refresh_claim(self, path: str, owner: str) -> None:
        """Renew ``owner``'s claim on ``path`` (its heartbeat is now); nothing if it is gone."""
        return None

    def release(self, path: str, owner: str) -> None:
        """Remove the claim on ``path`` if ``owner`` holds it."""
        return None

    def stamp(self, path: str) -> str | None:
        """A mark of the target at ``path`` that changes whenever it is written again (an
        inode and modification time, an ETag), or ``None`` (none there, or unknown here).
        Claims compare it to tell a stale target another runner rewrote meanwhile."""
        return None

    # -- built on them -------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        """Whether ``path`` holds a finished target."""
        return self.exists_many([path])[0]

    def exists_names(self, folder: str, names: Sequence[str]) -> list[bool]:
        """Whether each of ``names`` in ``folder`` holds a finished target (one listing of
        the folder where the store can list: the mapped steps' check)."""
        prefix = f"{folder}/" if folder else ""
        return self.exists_many([prefix + name for name in names])

    def load(self, path: str) -> Any:
        """Read the object stored at ``path``, with the serializer its suffix names."""
        return atomic.load(self, path)

    def save(self, path: str, obj: Any) -> None:
        """Write ``obj`` at ``path`` atomically: all of it appears, or nothing does."""
        atomic.save(self, path, obj)

    def temporary(self, path: str) -> contextlib.AbstractContextManager[str]:
        """A temporary local path to write ``path``'s content; committed on success."""
        return atomic.temporary(self, path)

    def location(self, path: str) -> str:
        """The user-facing location of ``path`` (what ``str(target)`` shows)."""
        return path

    def _missing(self, primitive: str) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} does not implement Store.{primitive}: implement open, "
            "stage and commit, or override load, save and temporary themselves"
        )

    def fspath(self, path: str) -> str:
        """A local filesystem path for ``path``; ``TypeError`` for stores that are not local."""
        raise TypeError(f"{type(self).__name__} targets are not local files: {path}")

    def relative(self, url: str) -> str | None:
        """The path inside this store of the location ``url``; ``None`` if it is not here."""
        return None


def by_folder(paths: Sequence[str]) -> dict[str, list[tuple[int, str]]]:
    """``paths`` grouped by folder: folder -> ``(index, name)`` of each path in it."""
    folders: defaultdict[str, list[tuple[int, str]]] = defaultdict(list)
    for i, path in enumerate(paths):
        folder, _, name = path.rpartition("/")
        folders[folder].append((i, name))
    return folders
