"""Atomic writes and reads, written once for every store: stage, write, commit.

A target's data is written to a staged local file (a unique temporary name), and only a
complete file is committed under the target's name. Any error, or a crash, leaves at most a
staged file, which never counts as a target. The serializer is chosen here, by suffix.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import glob
import os
import posixpath
import re
import socket
import stat
import tempfile
import warnings
import zlib
from collections.abc import Iterator
from typing import IO, Any, Protocol

import psutil

from pipex import serializers
from pipex.exceptions import StoreError
from pipex.redact import scrub

TEMPORARY_MARK = ".pipex-tmp"
#: The longest file name most filesystems take, in bytes.
NAME_MAX = 255
_WRITER = re.compile(r"\.([0-9a-f]{8})\.(\d+)\.[0-9a-f]{8}" + re.escape(TEMPORARY_MARK))


class Staging(Protocol):
    """The primitives of a store that this module builds on."""

    def open(self, path: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...

    def stage(self, path: str) -> tuple[str, IO[bytes]]: ...

    def commit(self, staged: str, path: str) -> None: ...

    def location(self, path: str) -> str: ...


def serializer_for(path: str) -> serializers.Serializer:
    """The serializer chosen by ``path``'s suffix."""
    return serializers.for_suffix(posixpath.splitext(path)[1])


def temporary_name(name: str) -> str:
    """A unique, hidden sibling name for ``name`` that keeps its suffix and names its writer.

    ``.<stem>.<host>.<pid>.<random>.pipex-tmp<suffix>``: the host (a hash of its name) and
    process id tell whether the writer is gone (:func:`abandoned`). The stem is shortened
    so that the name fits in :data:`NAME_MAX` bytes.
    """
    stem, suffix = posixpath.splitext(name)
    tail = f".{_host()}.{os.getpid()}.{os.urandom(4).hex()}{TEMPORARY_MARK}{suffix}"
    room = NAME_MAX - 1 - len(tail.encode())
    encoded = stem.encode()
    if len(encoded) > room:
        stem = encoded[: max(room, 0)].decode(errors="ignore")
    return f".{stem}{tail}"


def abandoned(name: str) -> bool:
    """Whether ``name`` is a temporary file whose writer, a process on this host, is gone.

    A temporary of another host is never abandoned here: its writer may be alive there.
    """
    match = _WRITER.search(name) if TEMPORARY_MARK in name else None
    return match is not None and gone(match.group(1), int(match.group(2)))


def gone(host: str, pid: int) -> bool:
    """Whether the writer ``pid`` of ``host`` (:func:`host_id`) is gone: a process of this
    host that no longer runs (another host's may be alive there: never gone here)."""
    return host == _host() and pid != os.getpid() and not psutil.pid_exists(pid)


def host_id() -> str:
    """This host, as writers' names hold it: a hash of its name, 8 hex digits."""
    return _host()


@functools.cache
def _host() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def local_stage(path: str) -> tuple[str, IO[bytes]]:
    """A new local temporary file for ``path`` (a store that is not a local folder stages here).

    In :func:`staging_folder`, named by :func:`temporary_name` (its writer's host and
    process), so that :func:`abandoned_staged` finds it once its writer is gone.
    """
    staged = os.path.join(staging_folder(), temporary_name(posixpath.basename(path)))
    return staged, os.fdopen(create(staged, private=True), "wb")


def staging_folder() -> str:
    """The local folder stores that are not local folders stage their writes in: a
    ``pipex-staging-<user id>`` folder of the system's temporary folder (``TMPDIR``), made
    with mode 0700 when missing.

    Its name is predictable, so another local user may have made it first (open to all, a
    symlink to a folder of theirs) to swap or delete a staged file before it is committed.
    It is used only if it is a real folder of this user with mode 0700; otherwise this
    process stages in a fresh private folder of its own (``pipex-staging-<user id>-<random>``,
    made by ``tempfile.mkdtemp``, removed at exit when empty) and says so once, in a warning.
    """
    shared = os.path.join(tempfile.gettempdir(), f"pipex-staging-{_user()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(shared, 0o700)
    problem = unsafe(shared)
    if problem is None:
        return shared
    fresh = _fresh(shared, problem)
    if unsafe(fresh) is None:
        return fresh
    _fresh.cache_clear()  # removed (or changed) since: make another
    return _fresh(shared, problem)


def unsafe(folder: str) -> str | None:
    """Why ``folder`` is no private staging folder of this user (``None`` if it is one)."""
    try:
        found = os.lstat(folder)
    except FileNotFoundError:
        return "it does not exist"
    if stat.S_ISLNK(found.st_mode):
        return f"it is a symbolic link (to {os.readlink(folder)})"
    if not stat.S_ISDIR(found.st_mode):
        return "it is not a folder"
    if hasattr(os, "getuid"):
        if found.st_uid != os.getuid():
            return f"it belongs to user id {found.st_uid}, not to this user ({os.getuid()})"
        if stat.S_IMODE(found.st_mode) != 0o700:
            return f"its mode is {stat.S_IMODE(found.st_mode):o}, not 700 (this user's only)"
    return None


@functools.cache
def _fresh(shared: str, problem: str) -> str:
    """A new private staging folder for this process, instead of ``shared``."""
    fresh = tempfile.mkdtemp(prefix=os.path.basename(shared) + "-", dir=os.path.dirname(shared))
    warnings.warn(
        f"pipex does not stage writes in {shared}: {problem}, so another user could swap or "
        f"delete the files staged there. This process stages in {fresh} instead. Remove "
        f"{shared} (or set TMPDIR to a folder of your own) to use the usual one.",
        RuntimeWarning,
        stacklevel=4,
    )
    atexit.register(_remove_if_empty, fresh)
    return fresh


def _remove_if_empty(folder: str) -> None:
    with contextlib.suppress(OSError):  # a staged file a killed writer left: `pipex clean`
        os.rmdir(folder)


def _user() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else "all"


def staging_folders() -> list[str]:
    """This user's private staging folders: the usual one and those made instead of it."""
    usual = os.path.join(tempfile.gettempdir(), f"pipex-staging-{_user()}")
    found = [usual, *sorted(glob.glob(glob.escape(usual) + "-*"))]
    return [folder for folder in found if unsafe(folder) is None]


def abandoned_staged(target: str | None = None) -> list[str]:
    """The files in this user's private staging folders (:func:`staging_folders`) whose
    writer, a process of this host, is gone (``target``: only those staged for a target of
    that path's name). A folder that is not private is not searched."""
    found = []
    for folder in staging_folders():
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if target is not None:
            stem, suffix = posixpath.splitext(posixpath.basename(target))
            head = f".{stem.encode()[:64].decode(errors='ignore')}"
            names = [
                n for n in names if n.startswith(head) and n.endswith(TEMPORARY_MARK + suffix)
            ]
        found += [os.path.join(folder, name) for name in names if abandoned(name)]
    return sorted(found)


#: How often :func:`create` makes a file's folder again when other threads remove it (an
#: empty folder a failed task's claim needed) between its making and the file's creation.
CREATE_ATTEMPTS = 1000


def create(full: str, private: bool = False) -> int:
    """A new file ``full`` (``FileExistsError`` if there is one), its folders made as needed
    (again if another thread removed an empty one meanwhile); its descriptor. ``private``:
    readable by its user only (as ``tempfile.mkstemp`` makes them), and so are its folders."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    mode = 0o600 if private else 0o666
    folder = os.path.dirname(full)
    for _ in range(CREATE_ATTEMPTS):
        try:
            return os.open(full, flags, mode)
        except FileNotFoundError:
            pass
        # "File exists": made by another thread, and removed again since; retry (a file
        # where a folder goes fails the open: NotADirectoryError)
        with contextlib.suppress(FileExistsError):
            os.makedirs(folder, mode | 0o100 if private else 0o777, exist_ok=True)
    return os.open(full, flags, mode)


def require_file(staged: str, location: str) -> None:
    """Refuse to commit a staged folder to a store that holds one object per target."""
    if os.path.isdir(staged):
        raise StoreError(
            f"target {location}: the task wrote a folder, but this store keeps one file per "
            "target and could not publish a folder atomically. Write a single file (an "
            "archive, say), or keep folder outputs in a local FileStore."
        )


def save(store: Staging, path: str, obj: Any) -> None:
    """Serialize ``obj`` into a staged file and commit it as ``path``."""
    serializer = serializer_for(path)
    staged, file = store.stage(path)
    try:
        with file:
            serializer.dump(obj, file)
        store.commit(staged, path)
    except OSError as exc:
        discard(staged)
        if out_of_space(exc):
            raise StoreError(
                f"cannot write target {store.location(path)}: the disk is full or a file-size "
                f"limit was reached ({type(exc).__name__}: {exc}). Free space where targets "
                "are written (or raise the limit: `ulimit -f`, a disk quota) and rerun: the "
                "targets already written are kept; this one was not written."
            ) from scrub(exc, store.location(path))
        raise
    except BaseException:
        discard(staged)
        raise


_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")  # numpy's tofile on a full disk


def out_of_space(exc: OSError) -> bool:
    """Whether ``exc`` says a write found no room: a full disk, a quota, a file-size limit."""
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    return exc.errno is None and bool(_SHORT_WRITE.search(str(exc)))


@contextlib.contextmanager
def temporary(store: Staging, path: str) -> Iterator[str]:
    """A fresh local path for a task to write ``path``'s content itself (``save=False``).

    Committed when the block ends without error and something was written there.
    """
    staged, file = store.stage(path)
    file.close()
    os.remove(staged)  # the task creates it; an empty file must not pass for its output
    try:
        yield staged
        if not os.path.lexists(staged):
            raise StoreError(
                f"nothing was written for target {store.location(path)}: a task with "
                "save=False must write its output to the path it receives as `target`"
            )
        store.commit(staged, path)
    except BaseException:
        discard(staged)
        raise


def load(store: Staging, path: str) -> Any:
    """Read the target at ``path`` with the serializer its suffix names."""
    serializer = serializer_for(path)
    try:
        with store.open(path) as file:
            return serializer.load(file)
    except FileNotFoundError as exc:
        location = store.location(path)
        raise StoreError(f"target {location} does not exist") from scrub(exc, location)


def discard(staged: str) -> None:
    """Remove a staged file or folder; nothing happens when there is none."""
    if os.path.isdir(staged) and not os.path.islink(staged):
        import shutil

        shutil.rmtree(staged, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.remove(staged)
