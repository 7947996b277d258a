"""What every store does, through the Store interface only: round trips, batched existence
(thousands of keys), atomic writes (a failing or killed writer), temporaries and ``save=False``
tasks, concurrent writers, deletes, pickling, and a pipeline that skips what it wrote."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

import pipex
from pipex.serializers import SUFFIXES
from tests.integration.processes import environment
from tests.stores.writers import kill_mid_save, pickled

np = pytest.importorskip("numpy")

VALUES = {
    ".pkl": {"a": [1, 2.5, None], "f": frozenset({3})},
    ".pickle": (1, "two"),
    ".json": {"k": [1, "x", None, True]},
    ".txt": "héllo\nwörld",
    ".npy": np.arange(12, dtype="int16").reshape(3, 4),
}


def same(a, b):
    return (a == b).all() if isinstance(a, np.ndarray) else a == b


def test_every_serializer_is_covered():
    assert set(VALUES) == set(SUFFIXES)


@pytest.mark.parametrize("suffix", sorted(VALUES))
def test_round_trip_per_serializer(store, suffix):
    path = f"out/step/page-001{suffix}"
    assert store.exists_many([path]) == [False]
    store.save(path, VALUES[suffix])
    assert store.exists(path)
    assert same(store.load(path), VALUES[suffix])


def test_exists_many_on_many_prefixes_keeps_order_and_duplicates(store):
    written = [f"out/s{i % 7}/{i:04d}.pkl" for i in range(0, 300, 3)]
    for path in written:
        store.save(path, path)
    asked = [f"out/s{i % 7}/{i:04d}.pkl" for i in range(300)] + ["nowhere/x.pkl", written[0]]
    assert store.exists_many(asked) == [p in set(written) for p in asked]


class _Broken(Exception):
    pass


class _FailsHalfWay:
    def __reduce__(self):
        raise _Broken("cannot pickle")


def test_a_failing_save_writes_nothing_and_keeps_the_previous_target(store):
    with pytest.raises(_Broken):
        store.save("out/a.pkl", [1, 2, _FailsHalfWay()])
    assert store.exists_many(["out/a.pkl"]) == [False]
    store.save("out/a.pkl", "first")
    with pytest.raises(_Broken):
        store.save("out/a.pkl", [_FailsHalfWay()])
    assert store.load("out/a.pkl") == "first"


def test_save_replaces_a_target(store):
    store.save("out/a.json", [1])
    store.save("out/a.json", [2])
    assert store.load("out/a.json") == [2]


def test_temporary_is_committed_on_success_only(store):
    with store.temporary("out/own.txt") as tmp, open(tmp, "w") as file:
        file.write("written by the task")
    assert store.load("out/own.txt") == "written by the task"

    with pytest.raises(_Broken), store.temporary("out/other.txt") as tmp:
        with open(tmp, "w") as file:
            file.write("half")
        raise _Broken("the task failed")
    assert store.exists_many(["out/other.txt"]) == [False]


def test_temporary_with_nothing_written_is_a_store_error(store):
    with (
        pytest.raises(pipex.StoreError, match="nothing was written"),
        store.temporary("out/none.txt"),
    ):
        pass
    assert not store.exists("out/none.txt")


def test_delete_and_delete_of_nothing(store):
    store.save("out/a.pkl", 1)
    store.delete("out/a.pkl")
    assert not store.exists("out/a.pkl")
    store.delete("out/a.pkl")  # no error


def test_load_of_a_missing_target_is_a_store_error(store):
    with pytest.raises(pipex.StoreError, match="does not exist"):
        store.load("out/missing.pkl")


def test_a_pickled_store_is_equal_and_sees_the_same_targets(store):
    store.save("out/a.pkl", "data")
    again = pickle.loads(pickle.dumps(store))
    assert again == store and hash(again) == hash(store)
    assert again.load("out/a.pkl") == "data"


def test_a_pipeline_on_the_store_writes_once_and_then_skips(store):
    calls = []

    @pipex.task(target="{path}/double/{x}.pkl", store=store)
    def double(x):
        calls.append(x)
        return 2 * x

    with pipex.context(path="run"):
        nodes = [double(i) for i in range(5)]
    assert pipex.compute(nodes, load=True, scheduler="sync")[0] == [0, 2, 4, 6, 8]
    assert pipex.compute(nodes, load=True, scheduler="sync")[0] == [0, 2, 4, 6, 8]
    assert sorted(calls) == [0, 1, 2, 3, 4]
    assert all(node.target.store == store for node in nodes)
    assert store.exists_many([f"run/double/{i}.pkl" for i in range(5)]) == [True] * 5


def test_exists_many_over_thousands_of_keys_in_one_folder(store):
    written = [f"out/many/{i:05d}.txt" for i in range(2100)]  # more than two listing pages
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda path: store.save(path, path), written))
    asked = [f"out/many/{i:05d}.txt" for i in range(2500)]
    assert store.exists_many(asked) == [i < 2100 for i in range(2500)]
    assert store.load("out/many/02099.txt") == "out/many/02099.txt"


def test_concurrent_writers_of_different_keys(store):
    def write(worker):
        for i in range(20):
            store.save(f"out/w{worker % 2}/{worker}-{i}.pkl", (worker, i))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    paths = [f"out/w{w % 2}/{w}-{i}.pkl" for w in range(8) for i in range(20)]
    assert store.exists_many(paths) == [True] * len(paths)
    assert [store.load(p) for p in paths] == [(w, i) for w in range(8) for i in range(20)]


def test_a_save_false_pipeline_writes_its_own_files(store):
    calls = []

    @pipex.task(target="{path}/ramp/{n}.npy", save=False, store=store)
    def ramp(n, target):
        calls.append(n)
        np.save(target, np.arange(n))

    with pipex.context(path="run"):
        nodes = [ramp(n) for n in (3, 5)]
    first = pipex.compute(nodes, load=True, scheduler="threads")[0]
    again = pipex.compute(nodes, load=True, scheduler="threads")[0]
    assert [a.tolist() for a in first] == [[0, 1, 2], [0, 1, 2, 3, 4]]
    assert [a.tolist() for a in again] == [[0, 1, 2], [0, 1, 2, 3, 4]]
    assert sorted(calls) == [3, 5]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_writer_killed_mid_save_leaves_no_target(shared_store, tmp_path):
    shared_store.save("out/other.pkl", 1)
    kill_mid_save(shared_store, "out/big.pkl", tmp_path)
    assert shared_store.exists_many(["out/big.pkl", "out/other.pkl"]) == [False, True]
    shared_store.save("out/big.pkl", "after")  # the store still works
    assert shared_store.load("out/big.pkl") == "after"


_WRITER = textwrap.dedent(
    """
    import pickle, sys

    with open(sys.argv[1], "rb") as file:
        store = pickle.load(file)
    for i in range(30):
        store.save(f"out/p{sys.argv[2]}/{i}.pkl", (sys.argv[2], i))
    """
)


@pytest.mark.slow
def test_processes_writing_different_keys_at_once(shared_store, tmp_path):
    store_file = pickled(shared_store, tmp_path)
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, store_file, str(n)], env=environment())
        for n in range(3)
    ]
    assert [proc.wait(timeout=240) for proc in procs] == [0, 0, 0]
    paths = [f"out/p{n}/{i}.pkl" for n in range(3) for i in range(30)]
    assert shared_store.exists_many(paths) == [True] * len(paths)
    assert [shared_store.load(p) for p in paths] == [
        (str(n), i) for n in range(3) for i in range(30)
    ]
