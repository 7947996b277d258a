"""The local staging folder of stores that are not local folders (S3, SQLite, memory): used
only when it is a real folder of this user with mode 0700; otherwise a fresh private one."""

from __future__ import annotations

import functools
import os
import stat
import tempfile
from pathlib import Path

import pytest

import pipex
from pipex.stores import atomic
from pipex.stores.atomic import abandoned_staged, staging_folder, temporary_name


@pytest.fixture
def tmpdir_of_test(tmp_path, monkeypatch):
    """``TMPDIR`` is a folder of the test's own; the usual staging folder's path in it."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    getattr(atomic, "_fresh", functools.cache(id)).cache_clear()
    yield tmp_path / f"pipex-staging-{os.getuid()}"
    getattr(atomic, "_fresh", functools.cache(id)).cache_clear()


def private(folder: str | Path) -> bool:
    found = os.lstat(folder)
    return (
        stat.S_ISDIR(found.st_mode)
        and found.st_uid == os.getuid()
        and stat.S_IMODE(found.st_mode) == 0o700
    )


def staged_by_a_store(store: pipex.Store, path: str) -> Path:
    """Where ``store`` stages a write of ``path``; the write is committed and read back."""
    with store.temporary(path) as local:
        Path(local).write_bytes(b"staged data")
        where = Path(local).parent
    with store.open(path) as file:
        assert file.read() == b"staged data"
    return where


def test_the_usual_folder_is_made_private_and_used(tmpdir_of_test, recwarn):
    store = pipex.MemoryStore()
    assert staged_by_a_store(store, "a/1.bin") == tmpdir_of_test
    assert private(tmpdir_of_test)
    pipex.MemoryStore().save("a/2.pkl", 2)
    assert [w for w in recwarn if "stage" in str(w.message)] == []


def test_a_folder_open_to_every_user_is_not_used(tmpdir_of_test, tmp_path):
    tmpdir_of_test.mkdir()
    os.chmod(tmpdir_of_test, 0o777)  # made beforehand by another local user, say
    with pytest.warns(RuntimeWarning, match="its mode is 777") as caught:
        where = staged_by_a_store(pipex.SQLiteStore(tmp_path / "t.db"), "a/1.bin")
    assert where != tmpdir_of_test
    assert where.parent == tmp_path and where.name.startswith(tmpdir_of_test.name + "-")
    assert private(where)
    assert list(tmpdir_of_test.iterdir()) == []
    assert str(where) in str(caught[0].message)
    pipex.MemoryStore().save("a/2.pkl", 2)  # the same fresh folder, and no second warning
    assert staging_folder() == str(where)
    assert len(caught) == 1


def test_a_symlink_to_another_users_folder_is_not_used(tmpdir_of_test, tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    tmpdir_of_test.symlink_to(theirs)
    with pytest.warns(RuntimeWarning, match="symbolic link"):
        where = staged_by_a_store(pipex.MemoryStore(), "a/1.bin")
    assert where not in (tmpdir_of_test, theirs)
    assert private(where)
    assert list(theirs.iterdir()) == []


def test_a_folder_of_another_user_is_not_used(tmpdir_of_test):
    if os.getuid() != 0:  # only root can make a folder another user's: check the rule itself
        assert atomic.unsafe("/") == f"it belongs to user id 0, not to this user ({os.getuid()})"
        return
    tmpdir_of_test.mkdir(mode=0o700)
    os.chown(tmpdir_of_test, 65534, 65534)  # nobody's
    with pytest.warns(RuntimeWarning, match="belongs to user id 65534"):
        where = staged_by_a_store(pipex.MemoryStore(), "a/1.bin")
    assert where != tmpdir_of_test and private(where)


def test_clean_finds_leftovers_in_the_fresh_folder_not_in_the_unsafe_one(tmpdir_of_test):
    tmpdir_of_test.mkdir()
    os.chmod(tmpdir_of_test, 0o777)
    with pytest.warns(RuntimeWarning):
        fresh = Path(staging_folder())
    gone = temporary_name("1.pkl").replace(f".{os.getpid()}.", ".999999999.")
    (fresh / gone).write_bytes(b"left by a killed writer")
    (tmpdir_of_test / gone).write_bytes(b"in a folder others may write")
    assert abandoned_staged() == [str(fresh / gone)]
