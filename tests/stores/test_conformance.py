"""What every store does, through the Store interface only: round trips, batched existence,
atomic writes, temporaries, deletes, pickling, and a pipeline that skips what it wrote."""

from __future__ import annotations

import pickle

import pytest

import pipex
from pipex.serializers import SUFFIXES

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
