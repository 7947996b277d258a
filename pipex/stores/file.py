"""``FileStore``: targets as files on a local or mounted filesystem."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from pipex.exceptions import StoreError
from pipex.stores.base import Store, removing_on_error, serializer_for, temporary_name


class FileStore(Store):
    """Targets as local files. Relative paths resolve against ``root``.

    ``root`` defaults to the working directory when the store is made, so workers in other
    directories (or on other machines with the same mount) find the same files.
    Writes go to a hidden temporary sibling and are renamed into place (``os.replace``).
    """

    __slots__ = ("_hash", "root")

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = os.path.abspath(os.fspath(root) if root is not None else os.getcwd())
        self._hash = hash((type(self), self.root))

    def __repr__(self) -> str:
        return f"FileStore({self.root!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.root == self.root

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.root,))

    def fspath(self, path: str) -> str:
        return os.path.join(self.root, path)

    def exists_many(self, paths: Sequence[str]) -> list[bool]:
        """One ``os.listdir`` per folder holding two or more of ``paths``; a stat otherwise."""
        by_folder: defaultdict[str, list[int]] = defaultdict(list)
        names = []
        for i, path in enumerate(paths):
            folder, _, name = path.rpartition("/")
            by_folder[folder].append(i)
            names.append(name)
        found = [False] * len(paths)
        for folder, indexes in by_folder.items():
            if len(indexes) == 1:
                found[indexes[0]] = os.path.exists(self.fspath(paths[indexes[0]]))
                continue
            full = os.path.join(self.root, folder)
            try:
                present = set(os.listdir(full))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise StoreError(f"cannot list {full} to check targets: {exc}") from exc
            for i in indexes:
                found[i] = names[i] in present
        return found

    def load(self, path: str) -> Any:
        full = self.fspath(path)
        serializer = serializer_for(path)
        try:
            with open(full, "rb") as file:
                return serializer.load(file)
        except FileNotFoundError as exc:
            raise StoreError(f"target {full} does not exist") from exc

    def save(self, path: str, obj: Any) -> None:
        serializer = serializer_for(path)
        full = self.fspath(path)
        folder, name = os.path.split(full)
        tmp = os.path.join(folder, temporary_name(name))
        try:
            file = open(tmp, "xb")  # noqa: SIM115 - closed below, before the rename
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            file = open(tmp, "xb")  # noqa: SIM115
        try:
            with file:
                serializer.dump(obj, file)
            os.replace(tmp, full)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise

    @contextlib.contextmanager
    def temporary(self, path: str) -> Iterator[str]:
        full = self.fspath(path)
        folder, name = os.path.split(full)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, temporary_name(name))
        with removing_on_error(_remove, tmp):
            yield tmp
            if not os.path.lexists(tmp):
                raise StoreError(
                    f"nothing was written for target {full}: a task with save=False must "
                    "write its output to the path it receives as `target`"
                )
            os.replace(tmp, full)

    def delete(self, path: str) -> None:
        _remove(self.fspath(path))


def _remove(full: str) -> None:
    """Remove a file or folder; nothing happens when it does not exist."""
    if os.path.isdir(full) and not os.path.islink(full):
        shutil.rmtree(full, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(full)
