"""``Store``: where targets live. Subclasses implement a few primitives; the rest is shared."""

from __future__ import annotations

import abc
import contextlib
import os
import posixpath
from collections.abc import Iterator, Sequence
from typing import Any

from pipex import serializers


class Store(abc.ABC):
    """A place that holds targets, addressed by path strings.

    Subclasses implement :meth:`exists_many`, :meth:`load`, :meth:`save` (atomic),
    :meth:`temporary` and :meth:`delete`. Stores are small and picklable: they travel to
    workers with each task.
    """

    __slots__ = ()

    @abc.abstractmethod
    def exists_many(self, paths: Sequence[str]) -> list[bool]:
        """Whether each path holds a finished target, checked in as few calls as possible."""

    @abc.abstractmethod
    def load(self, path: str) -> Any:
        """Read the object stored at ``path``, with the serializer its suffix names."""

    @abc.abstractmethod
    def save(self, path: str, obj: Any) -> None:
        """Write ``obj`` at ``path`` atomically: all of it appears, or nothing does."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Remove the target at ``path``; nothing happens when there is none."""

    @abc.abstractmethod
    def temporary(self, path: str) -> contextlib.AbstractContextManager[str]:
        """A temporary local path to write ``path``'s content; moved into place on success."""

    def exists(self, path: str) -> bool:
        """Whether ``path`` holds a finished target."""
        return self.exists_many([path])[0]

    def location(self, path: str) -> str:
        """The user-facing location of ``path`` (what ``str(target)`` shows)."""
        return path

    def fspath(self, path: str) -> str:
        """A local filesystem path for ``path``; ``TypeError`` for stores that are not local."""
        raise TypeError(f"{type(self).__name__} targets are not local files: {path}")


def serializer_for(path: str) -> serializers.Serializer:
    """The serializer chosen by ``path``'s suffix."""
    return serializers.for_suffix(posixpath.splitext(path)[1])


def temporary_name(name: str) -> str:
    """A unique, hidden sibling name for ``name`` that keeps its suffix."""
    stem, suffix = posixpath.splitext(name)
    return f".{stem}.{os.urandom(6).hex()}.pipex-tmp{suffix}"


@contextlib.contextmanager
def removing_on_error(remove: Any, path: str) -> Iterator[None]:
    """Call ``remove(path)`` if the block raises anything, then re-raise."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            remove(path)
        raise
