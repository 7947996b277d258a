"""FileStore specifics: files on disk, atomic renames, listings, roots.

What every store does is in test_conformance.py.
"""

import contextlib
import os
import pickle
import signal
import threading

import pytest

import pipex
from pipex.stores.atomic import temporary_name
from tests.stores.writers import BIG, kill_mid_save


class _PickleFailure(Exception):
    pass


class _FailsToPickle:
    """Fails to pickle; records what the folder holds at that moment (the written prefix)."""

    def __init__(self, folder):
        self.folder = folder
        self.seen = []

    def __reduce__(self):
        self.seen.append(
            {
                name: os.path.getsize(os.path.join(self.folder, name))
                for name in os.listdir(self.folder)
            }
        )
        raise _PickleFailure("cannot pickle this object")


# --- atomic save -----------------------------------------------------------------------------


def test_save_writes_the_target_and_nothing_else(tmp_path):
    store = pipex.FileStore(tmp_path)
    store.save("out/deep/a.pkl", {"x": 1})
    assert os.listdir(tmp_path / "out" / "deep") == ["a.pkl"]
    assert store.load("out/deep/a.pkl") == {"x": 1}


def test_failed_save_half_way_leaves_nothing(tmp_path):
    store = pipex.FileStore(tmp_path)
    folder = tmp_path / "out"
    folder.mkdir()
    bad = _FailsToPickle(str(folder))
    with pytest.raises(_PickleFailure):
        store.save("out/a.pkl", [b"x" * BIG, bad])
    # when pickling failed, a large prefix had been written to a hidden temporary file ...
    assert len(bad.seen) == 1
    ((name, size),) = bad.seen[0].items()
    assert name.startswith(".") and name != "a.pkl"
    assert size >= BIG
    # ... and none of it remains: neither the target nor the temporary file
    assert os.listdir(folder) == []
    assert store.exists_many(["out/a.pkl"]) == [False]


def test_failed_save_keeps_the_previous_target(tmp_path):
    store = pipex.FileStore(tmp_path)
    store.save("a.pkl", "old")
    with pytest.raises(_PickleFailure):
        store.save("a.pkl", [b"x" * BIG, _FailsToPickle(str(tmp_path))])
    assert os.listdir(tmp_path) == ["a.pkl"]
    assert store.load("a.pkl") == "old"


def test_save_replaces_an_existing_target(tmp_path):
    store = pipex.FileStore(tmp_path)
    store.save("a.txt", "old")
    store.save("a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new"
    assert os.listdir(tmp_path) == ["a.txt"]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_mid_write_leaves_no_target(tmp_path):
    store = pipex.FileStore(tmp_path / "root")
    store.save("out/other.pkl", 1)  # so exists_many lists the folder
    folder = tmp_path / "root" / "out"
    sizes = {}

    def look():  # the process is in the middle of the write: a large temporary file exists
        sizes.update({p.name: p.stat().st_size for p in folder.iterdir()})

    kill_mid_save(store, "out/big.pkl", tmp_path, while_writing=look)
    partial = [name for name in sizes if name not in ("other.pkl", "big.pkl")]
    assert len(partial) == 1
    assert sizes[partial[0]] >= BIG
    assert not (folder / "big.pkl").exists()
    assert store.exists_many(["out/big.pkl", "out/other.pkl"]) == [False, True]
    assert store.exists_many(["out/big.pkl"]) == [False]
    assert not pipex.Target("out/big.pkl", store).exists()
    # the leftover temporary file was hidden, did not count as the target, and the listing
    # removed it: its writer is gone
    leftovers = [n for n in os.listdir(folder) if n != "other.pkl"]
    assert all(n.startswith(".") for n in leftovers)
    assert leftovers == []


def test_temporary_name_is_hidden_unique_and_keeps_the_suffix():
    names = {temporary_name("page.npy") for _ in range(100)}
    assert len(names) == 100
    for name in names:
        assert name.startswith(".page.")
        assert name.endswith(".npy")
        assert name != "page.npy"


# --- exists_many -----------------------------------------------------------------------------


def test_exists_many_mixed_folders(tmp_path):
    store = pipex.FileStore(tmp_path)
    for path in ["a/1.pkl", "a/2.pkl", "b/x.pkl", "top.pkl", "single/only.pkl"]:
        store.save(path, path)
    (tmp_path / "a" / ".1.pkl.tmp").write_bytes(b"")
    queries = {
        "a/1.pkl": True,
        "a/3.pkl": False,
        "b/x.pkl": True,
        "b/y.pkl": False,
        "missing/z.pkl": False,  # a folder that does not exist
        "missing/w.pkl": False,
        "top.pkl": True,
        "other.pkl": False,
        "single/only.pkl": True,  # the only query in its folder
        "nowhere/alone.pkl": False,
        "a/2.pkl": True,
        "top.pkl/under.pkl": False,  # parent is a file
        "top.pkl/under2.pkl": False,
    }
    assert store.exists_many(list(queries)) == list(queries.values())


def test_exists_many_keeps_order_and_duplicates(tmp_path):
    store = pipex.FileStore(tmp_path)
    store.save("a.pkl", 1)
    assert store.exists_many(["a.pkl", "b.pkl", "a.pkl", "b.pkl"]) == [True, False, True, False]
    assert store.exists_many([]) == []


def test_exists_many_in_a_folder_with_many_files(tmp_path):
    store = pipex.FileStore(tmp_path)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(0, 2000, 2):
        (folder / f"{i:05d}.pkl").write_bytes(b"")
    for i in range(1, 2000, 4):  # hidden leftovers named after missing targets
        (folder / temporary_name(f"{i:05d}.pkl")).write_bytes(b"")
    paths = [f"many/{i:05d}.pkl" for i in range(2000)]
    assert store.exists_many(paths) == [i % 2 == 0 for i in range(2000)]


@pytest.mark.parametrize("count", [1, 2])
def test_hidden_temporary_does_not_count_as_the_target(tmp_path, count):
    store = pipex.FileStore(tmp_path)
    (tmp_path / temporary_name("a.pkl")).write_bytes(b"partial")
    paths = ["a.pkl", "b.pkl"][:count]
    assert store.exists_many(paths) == [False] * count
    assert not store.exists("a.pkl")


def test_exists_single(tmp_path):
    store = pipex.FileStore(tmp_path)
    assert not store.exists("x/a.pkl")
    store.save("x/a.pkl", 1)
    assert store.exists("x/a.pkl")


# --- temporary -------------------------------------------------------------------------------


def test_temporary_moves_into_place_on_success(tmp_path):
    store = pipex.FileStore(tmp_path)
    with store.temporary("out/a.txt") as tmp:
        assert os.path.dirname(tmp) == str(tmp_path / "out")
        assert os.path.basename(tmp) != "a.txt"
        with open(tmp, "w") as file:
            file.write("content")
        assert not (tmp_path / "out" / "a.txt").exists()
    assert os.listdir(tmp_path / "out") == ["a.txt"]
    assert store.load("out/a.txt") == "content"


def test_temporary_folder_output(tmp_path):
    store = pipex.FileStore(tmp_path)
    with store.temporary("out/table.zarr") as tmp:
        os.mkdir(tmp)
        with open(os.path.join(tmp, "chunk"), "w") as file:
            file.write("c")
    assert os.listdir(tmp_path / "out") == ["table.zarr"]
    assert (tmp_path / "out" / "table.zarr" / "chunk").read_text() == "c"
    assert store.exists("out/table.zarr")


class _Interrupted(Exception):
    pass


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_temporary_is_removed_on_exception(tmp_path, kind):
    store = pipex.FileStore(tmp_path)
    with pytest.raises(_Interrupted), store.temporary("out/a.txt") as tmp:
        if kind == "file":
            with open(tmp, "w") as file:
                file.write("partial")
        else:
            os.mkdir(tmp)
            with open(os.path.join(tmp, "part"), "w") as file:
                file.write("partial")
        assert os.path.exists(tmp)
        raise _Interrupted
    assert os.listdir(tmp_path / "out") == []


def test_temporary_with_nothing_written_is_an_error(tmp_path):
    store = pipex.FileStore(tmp_path)
    with pytest.raises(pipex.StoreError, match="nothing was written"), store.temporary("a.txt"):
        pass
    assert os.listdir(tmp_path) == []


def test_temporaries_of_one_target_are_distinct(tmp_path):
    store = pipex.FileStore(tmp_path)
    with store.temporary("a.txt") as first, store.temporary("a.txt") as second:
        assert first != second
        for tmp, text in ((first, "1"), (second, "2")):
            with open(tmp, "w") as file:
                file.write(text)
    assert os.listdir(tmp_path) == ["a.txt"]
    assert store.load("a.txt") == "1"  # the outer one finished last


# --- delete ----------------------------------------------------------------------------------


def test_delete_file(tmp_path):
    store = pipex.FileStore(tmp_path)
    store.save("out/a.pkl", 1)
    store.save("out/b.pkl", 2)
    store.delete("out/a.pkl")
    assert os.listdir(tmp_path / "out") == ["b.pkl"]
    assert not store.exists("out/a.pkl")


def test_delete_folder(tmp_path):
    store = pipex.FileStore(tmp_path)
    store.save("out/table.zarr/x/0.pkl", 1)
    store.save("out/keep.pkl", 2)
    store.delete("out/table.zarr")
    assert os.listdir(tmp_path / "out") == ["keep.pkl"]


def test_delete_missing_path_is_a_no_op(tmp_path):
    store = pipex.FileStore(tmp_path)
    store.save("keep.pkl", 1)
    store.delete("missing.pkl")
    store.delete("no/such/folder/x.pkl")
    assert os.listdir(tmp_path) == ["keep.pkl"]


def test_delete_symlink_removes_the_link_only(tmp_path):
    store = pipex.FileStore(tmp_path)
    store.save("real/x.pkl", 1)
    os.symlink(tmp_path / "real", tmp_path / "link")
    store.delete("link")
    assert not os.path.lexists(tmp_path / "link")
    assert store.load("real/x.pkl") == 1


# --- root and pickling -----------------------------------------------------------------------


def test_relative_paths_resolve_against_root_not_cwd(workdir, monkeypatch):
    store = pipex.FileStore("data")
    assert store.root == str(workdir / "data")
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    store.save("out/a.pkl", "value")
    assert (workdir / "data" / "out" / "a.pkl").is_file()
    assert list(elsewhere.iterdir()) == []
    assert store.exists("out/a.pkl")
    assert store.exists_many(["out/a.pkl", "out/b.pkl"]) == [True, False]
    assert store.load("out/a.pkl") == "value"
    with store.temporary("out/b.txt") as tmp:
        assert os.path.dirname(tmp) == str(workdir / "data" / "out")
        with open(tmp, "w") as file:
            file.write("b")
    assert (workdir / "data" / "out" / "b.txt").read_text() == "b"
    store.delete("out/a.pkl")
    assert not (workdir / "data" / "out" / "a.pkl").exists()


def test_default_root_is_the_working_directory_when_made(workdir, monkeypatch):
    store = pipex.FileStore()
    monkeypatch.chdir(workdir.parent)
    store.save("a.pkl", 1)
    assert (workdir / "a.pkl").is_file()


def test_absolute_path_inside_a_store(tmp_path):
    store = pipex.FileStore(tmp_path / "root")
    store.save(str(tmp_path / "abs" / "a.pkl"), 1)
    assert (tmp_path / "abs" / "a.pkl").is_file()


def test_pickled_store_keeps_its_root(workdir, monkeypatch):
    store = pipex.FileStore("data")
    store.save("a.pkl", [1, 2])
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    copy = pickle.loads(pickle.dumps(store))
    assert copy.root == str(workdir / "data")
    assert copy == store
    assert hash(copy) == hash(store)
    assert copy.load("a.pkl") == [1, 2]


def test_store_equality(tmp_path):
    assert pipex.FileStore(tmp_path) == pipex.FileStore(str(tmp_path) + "/")
    assert pipex.FileStore(tmp_path) != pipex.FileStore(tmp_path / "x")
    assert str(tmp_path) in repr(pipex.FileStore(tmp_path))


def test_load_missing_is_a_store_error(tmp_path):
    with pytest.raises(pipex.StoreError, match="does not exist"):
        pipex.FileStore(tmp_path).load("a.pkl")
    assert issubclass(pipex.StoreError, OSError)


def test_store_locations_by_scheme(tmp_path):
    from pipex.stores import store_for

    assert store_for(str(tmp_path)) == pipex.FileStore(tmp_path)
    assert store_for(f"file://{tmp_path}") == pipex.FileStore(tmp_path)
    store = pipex.FileStore(tmp_path)
    assert store_for(store) is store


def test_an_unknown_scheme_is_refused_not_made_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pipex.StoreError, match="nosuch://"):

        @pipex.task(store="nosuch://bucket/root")
        def f(x):
            return x

    assert list(tmp_path.iterdir()) == []


def test_claims_made_while_other_threads_remove_their_emptied_folder_are_made(tmp_path):
    # A task that fails releases its claim and removes the folder the claim alone needed;
    # other threads claiming in that folder at the moment made it again, or saw it made
    # and gone (os.makedirs: "File exists"), and a few times in a row failed their task.
    from pipex.stores.atomic import create

    folder = tmp_path / "pages"
    errors: list[BaseException] = []

    def claim_and_fail(name: str) -> None:
        full = str(folder / f".{name}.pkl.pipex-claim")
        for _ in range(20_000):
            try:
                os.close(create(full))
            except OSError as exc:
                errors.append(exc)
                continue
            os.remove(full)
            with contextlib.suppress(OSError):
                os.rmdir(folder)

    threads = [threading.Thread(target=claim_and_fail, args=(str(i),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
