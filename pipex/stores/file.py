"""``FileStore``: targets as files on a local or mounted filesystem."""

from __future__ import annotations

import contextlib
import glob
import io
import operator
import os
from collections.abc import Iterator, Sequence
from typing import IO, Any, cast

from pipex.exceptions import StoreError
from pipex.stores import claims, owners
from pipex.stores.atomic import TEMPORARY_MARK, abandoned, create, discard, temporary_name
from pipex.stores.base import Store, by_folder
from pipex.stores.claims import CLAIM_SIZE, claim_path, is_claim
from pipex.stores.owners import readable

_NAME = operator.attrgetter("name")
_LINK = os.DirEntry.is_symlink

#: The extended attribute of a claim file that holds its owner record.
OWNER_ATTRIBUTE = "user.pipex.owner"


class FileStore(Store):
    """Targets as local files. Relative paths resolve against ``root``.

    ``root`` (a folder, or a ``file://`` URL) defaults to the working directory when the
    store is made, so workers in other directories (or on other machines with the same mount)
    find the same files.
    Writes are staged in a hidden temporary sibling and renamed into place (``os.replace``).
    A claim is a hidden sibling ``.<name>.pipex-claim`` created with ``O_EXCL``; its
    modification time is its heartbeat. Its owner record is its content and, where the
    filesystem keeps user extended attributes, a short form of it (host, process and its
    start) is its attribute :data:`OWNER_ATTRIBUTE`: there the task's save writes the
    target's data into the claim itself and renames it into place (one file creation fewer
    per task), and the attribute still tells whether the owner runs should the writer be
    killed half way.
    """

    exclusive_claims = True

    __slots__ = ("_hash", "root")

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        folder = os.fspath(root) if root is not None else os.getcwd()
        self.root = os.path.abspath(folder.removeprefix("file://"))
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
        found = [False] * len(paths)
        for folder, entries in by_folder(paths).items():
            if len(entries) == 1:
                index = entries[0][0]
                found[index] = os.path.exists(self.fspath(paths[index]))
                continue
            present = self._listing(os.path.join(self.root, folder))
            for index, name in entries:
                found[index] = name in present
        return found

    def exists(self, path: str) -> bool:
        return os.path.exists(self.fspath(path))

    def stamp(self, path: str) -> str | None:
        """Its inode, modification time and size: a commit is a rename of a new file."""
        try:
            info = os.stat(self.fspath(path))
        except OSError:
            return None
        return f"{info.st_ino}:{info.st_mtime_ns}:{info.st_size}"

    def exists_names(self, folder: str, names: Sequence[str]) -> list[bool]:
        """One listing of ``folder``, each name looked up in it."""
        if len(names) < 2:
            return super().exists_names(folder, names)
        present = self._listing(os.path.join(self.root, folder))
        return list(map(present.__contains__, names))

    @staticmethod
    def _listing(full: str) -> set[str]:
        """The finished targets in folder ``full`` (no dangling links, temporaries or claims).

        Temporary files left by writers on this host that are gone are removed on the way.
        """
        try:
            with os.scandir(full) as listing:
                entries = list(listing)
        except (FileNotFoundError, NotADirectoryError):
            return set()
        except OSError as exc:
            raise StoreError(f"cannot list {full} to check targets: {exc}") from exc
        names = list(map(_NAME, entries))
        present = set(names)
        if ".pipex-" in "\0".join(names):  # TEMPORARY_MARK or CLAIM_MARK: never a target
            for entry in entries:
                name = entry.name
                if ".pipex-" in name and (TEMPORARY_MARK in name or is_claim(name)):
                    present.discard(name)
                    if TEMPORARY_MARK in name and abandoned(name):
                        discard(entry.path)
        for entry in filter(_LINK, entries):  # a dangling link is no target
            if not os.path.exists(entry.path):
                present.discard(entry.name)
        return present

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[IO[bytes]]:
        with open(self.fspath(path), "rb") as file:
            yield file

    def stage(self, path: str) -> tuple[str, IO[bytes]]:
        """A hidden sibling of the target (same folder, so the commit is one rename): the
        target's claim when this context holds it (:func:`~pipex.stores.claims.held`)."""
        slot = claims.staged_in_claim(self, path, kept=True)
        descriptor = slot.descriptor if slot is not None else None
        if slot is not None and descriptor is not None:
            slot.descriptor = None
            if slot.surely_held() or os.fstat(descriptor).st_nlink:
                # a binary file (io.RawIOBase), which typeshed does not count as an IO[bytes]
                return slot.file, cast(IO[bytes], _Overwriting(descriptor, slot.size))
            os.close(descriptor)  # the claim was lost (taken over): stage anew
        folder, name = os.path.split(self.fspath(path))
        staged = os.path.join(folder, temporary_name(name))
        return staged, os.fdopen(create(staged), "wb")

    def commit(self, staged: str, path: str) -> None:
        os.replace(staged, self.fspath(path))

    def delete(self, path: str) -> None:
        discard(self.fspath(path))

    # -- claims --------------------------------------------------------------------------------

    def claim(self, path: str, owner: str) -> bool:
        full = self.fspath(claim_path(path))
        try:
            descriptor = create(full)
        except FileExistsError:
            return False
        try:
            short = owners.mark(owner)
            try:
                os.setxattr(descriptor, OWNER_ATTRIBUTE, short)
                marked = bool(short)
            except OSError:  # no user attributes here: the content alone holds the record
                marked = False
            os.pwrite(descriptor, owner.encode(), 0)  # the file's position stays at its start
        except BaseException:
            os.close(descriptor)
            raise
        # Data may go into the claim only while the attribute keeps its owner readable.
        if not (marked and claims.keep(self, path, descriptor, full)):
            os.close(descriptor)
        return True

    def claim_holder(self, path: str) -> tuple[str, float] | None:
        try:
            return _holder(self.fspath(claim_path(path)))
        except FileNotFoundError:
            return None

    def refresh_claim(self, path: str, owner: str) -> None:
        holder = self.claim_holder(path)
        if holder is not None and holder[0] == owner:
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.fspath(claim_path(path)))

    def _delete_claim(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.fspath(claim_path(path)))

    def release(self, path: str, owner: str) -> None:
        holder = self.claim_holder(path)
        if holder is None or holder[0] != owner:
            return
        full = self.fspath(claim_path(path))
        if owners.expired(holder, claims.timeout()):
            claims.take_over(self, path, owner, self._delete_claim)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(full)
            folder = os.path.dirname(full)
            if folder != self.root:
                with contextlib.suppress(OSError):  # a folder only the claim needed
                    os.rmdir(folder)

    def glob(self, pattern: str) -> list[str]:
        """The files under the root whose path matches ``pattern``, sorted (optional listing).

        ``glob`` rules: ``*`` stays within a folder, ``**`` spans folders, and a hidden name
        matches only a pattern that spells its leading dot. Not a :class:`Store` primitive:
        stores that can list may offer it (``pipex.invalidate`` globs without ``within`` and
        ``pipex clean`` use it where it exists).
        """
        found = glob.glob(pattern, root_dir=self.root, recursive=True)
        return sorted(p for p in found if os.path.isfile(os.path.join(self.root, p)))


def _holder(full: str) -> tuple[str, float]:
    """The owner of the claim file ``full`` (its content, else, when data was written over
    it, the short form its attribute keeps; see :mod:`pipex.stores.owners`) and its
    modification time."""
    with open(full, "rb") as file:
        owner = readable(file.read(CLAIM_SIZE))
        if owner == owners.UNREADABLE:
            with contextlib.suppress(OSError):  # none (killed before it), or unsupported
                owner = owners.from_mark(os.getxattr(file.fileno(), OWNER_ATTRIBUTE))
        return owner, os.fstat(file.fileno()).st_mtime


class _Overwriting(io.RawIOBase):
    """A claim file, its descriptor open since the claim was made, overwritten with the
    target's data from its start (its owner attribute stays until the close removes it),
    and cut at the end of the data when that is shorter than
    the claim was (``size``): cheaper than truncating it when opened (ext4 then flushes the
    file at its close). Unbuffered: each write is one ``os.write`` (more when the kernel
    writes a part), and nothing seeks."""

    def __init__(self, descriptor: int, size: int) -> None:
        super().__init__()
        self.descriptor = descriptor
        self.size = size
        self.written = 0

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.descriptor

    def tell(self) -> int:
        return self.written

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        done = os.write(self.descriptor, view)
        while done < size:
            done += os.write(self.descriptor, view[done:])
        self.written += size
        return size

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self.written < self.size:
                os.ftruncate(self.descriptor, self.written)
            with contextlib.suppress(OSError):  # the target keeps no owner record
                os.removexattr(self.descriptor, OWNER_ATTRIBUTE)
        finally:
            os.close(self.descriptor)
            super().close()
