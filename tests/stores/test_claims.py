"""Claims on every store: exclusive, held by their owner, renewed, released, never a target;
and a store written against the old interface grants every claim."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import dask
import pytest

import pipex
from pipex.stores import claims
from pipex.stores.claims import held, new_owner

PATH = "out/step/page-001.pkl"


def test_a_claim_is_exclusive_until_its_owner_releases_it(store):
    assert store.exclusive_claims
    first, second = new_owner(), new_owner()
    assert store.claim_holder(PATH) is None
    assert store.claim(PATH, first)
    assert not store.claim(PATH, second)
    owner, beat = store.claim_holder(PATH)
    assert owner == first and abs(beat - time.time()) < 600  # clocks of one machine

    store.release(PATH, second)  # not its owner: nothing happens
    assert store.claim_holder(PATH)[0] == first
    store.release(PATH, first)
    assert store.claim_holder(PATH) is None
    assert store.claim(PATH, second)


def test_of_many_threads_claiming_at_once_one_gets_it(store):
    owners = [new_owner() for _ in range(8)]
    barrier = threading.Barrier(len(owners))

    def claim(owner):
        barrier.wait()
        return store.claim(PATH, owner)

    with ThreadPoolExecutor(len(owners)) as pool:
        granted = list(pool.map(claim, owners))
    assert granted.count(True) == 1
    assert store.claim_holder(PATH)[0] == owners[granted.index(True)]


def test_a_renewal_moves_the_heartbeat_of_its_owner_only(store):
    owner = new_owner()
    assert store.claim(PATH, owner)
    _, beat = store.claim_holder(PATH)
    time.sleep(1.1)  # S3 keeps times to the second
    store.refresh_claim(PATH, new_owner())  # another owner: nothing happens
    assert store.claim_holder(PATH)[1] == beat
    store.refresh_claim(PATH, owner)
    assert store.claim_holder(PATH)[1] > beat
    store.refresh_claim("out/step/never-claimed.pkl", owner)  # nothing to renew, no error
    assert store.claim_holder("out/step/never-claimed.pkl") is None


def test_a_claim_is_never_a_target(store):
    store.save("out/step/page-002.pkl", 2)
    assert store.claim(PATH, new_owner())
    assert store.claim("out/step/page-002.pkl", new_owner())
    asked = [PATH, "out/step/page-002.pkl", "out/step/page-003.pkl"]
    assert store.exists_many(asked) == [False, True, False]
    assert not store.exists(PATH)
    assert store.exists_many([PATH]) == [False]


def test_held_gives_the_target_to_one_and_the_other_waits_for_it(store):
    order = []
    with held(store, PATH) as mine:
        assert mine

        def other():
            with held(store, PATH) as theirs:
                order.append(("other", theirs))

        waiting = threading.Thread(target=other)
        waiting.start()
        time.sleep(0.3)  # the other is waiting, not running: it has recorded nothing
        order.append(("first wrote", True))
        store.save(PATH, 1)
    waiting.join(60)
    assert order == [("first wrote", True), ("other", False)]
    assert store.claim_holder(PATH) is None


def test_an_expired_claim_is_taken_over(store):
    foreign = json.dumps({"host": "another-host", "pid": 1, "id": "x"})
    assert store.claim(PATH, foreign)
    with dask.config.set({"pipex.claims.timeout": "0.5s"}):
        time.sleep(1.6)  # the foreign claim's heartbeat is older than the timeout
        with held(store, PATH) as mine:
            assert mine
            assert store.claim_holder(PATH)[0] != foreign
    assert store.claim_holder(PATH) is None


def test_a_claim_of_a_process_of_this_host_that_is_gone_expires_at_once(store):
    gone = json.dumps({"host": claims.socket.gethostname(), "pid": _dead_pid(), "id": "x"})
    assert store.claim(PATH, gone)
    assert claims.expired(store.claim_holder(PATH), seconds=3600)
    with held(store, PATH) as mine:
        assert mine


def test_claims_off_grant_without_touching_the_store(store):
    assert store.claim(PATH, new_owner())
    with dask.config.set({"pipex.claims": False}), held(store, PATH) as mine:
        assert mine
    with dask.config.set({"pipex.claims.enabled": False}), held(store, PATH) as mine:
        assert mine


class OldStore(pipex.Store):
    """A user's store written before claims: targets in a dict."""

    def __init__(self):
        self.data = {}

    def exists_many(self, paths: Sequence[str]) -> list[bool]:
        return [p in self.data for p in paths]

    def save(self, path, obj):
        self.data[path] = obj

    def load(self, path):
        return self.data[path]

    def delete(self, path):
        self.data.pop(path, None)


def test_a_store_without_claims_grants_every_claim_and_runs_pipelines():
    store = OldStore()
    assert not store.exclusive_claims
    assert store.claim(PATH, "a") and store.claim(PATH, "b")
    assert store.claim_holder(PATH) is None
    with held(store, PATH) as mine, held(store, PATH) as also_mine:
        assert mine and also_mine
    calls = []

    @pipex.task(target="out/{x}.pkl", store=store)
    def double(x):
        calls.append(x)
        return 2 * x

    assert pipex.compute(double(3), load=True, scheduler="sync", progress=False) == (6,)
    assert calls == [3]


def _dead_pid() -> int:
    pid = os.getpid() + 100_000
    while claims._alive(pid):
        pid += 1
    return pid


@pytest.fixture(autouse=True)
def _short_polls(monkeypatch):
    monkeypatch.setattr(claims, "POLL_LONGEST", 0.05)


def test_a_file_store_writes_the_target_through_its_claim(tmp_path):
    store = pipex.FileStore(tmp_path)
    with held(store, PATH, stage=True) as mine:
        assert mine
        claim = tmp_path / claims.claim_path(PATH)
        inode = claim.stat().st_ino
        store.save(PATH, {"a": 1})
        assert not claim.exists()  # the claim became the target: its commit released it
        assert (tmp_path / PATH).stat().st_ino == inode
    assert store.load(PATH) == {"a": 1}
    with held(store, "out/step/short.json", stage=True):
        store.save("out/step/short.json", 7)  # shorter than the claim it overwrites
    assert (tmp_path / "out/step/short.json").read_text() == "7"
    assert sorted(os.listdir(tmp_path / "out/step")) == ["page-001.pkl", "short.json"]


def test_a_failed_save_through_a_claim_leaves_neither_claim_nor_target(tmp_path):
    store = pipex.FileStore(tmp_path)

    class Unpicklable:
        def __reduce__(self):
            raise ValueError("no")

    with pytest.raises(ValueError), held(store, PATH, stage=True):
        store.save(PATH, Unpicklable())
    assert os.listdir(tmp_path / "out/step") == []


def test_a_claim_taken_over_while_its_task_ran_is_not_written_through(tmp_path):
    """The claim's descriptor is kept open from its creation to the save; a claim another
    runner took over meanwhile (its own claim now under that name) is left alone."""
    store = pipex.FileStore(tmp_path)
    claim = tmp_path / claims.claim_path(PATH)
    other = new_owner()
    with dask.config.set({"pipex.claims.timeout": "0.2s"}), held(store, PATH, stage=True):
        time.sleep(0.15)  # older than half its timeout: the save looks whether it still holds
        os.remove(claim)  # taken over: the other runner moved it aside and removed it...
        assert store.claim(PATH, other)  # ...and claimed the target itself
        store.save(PATH, list(range(100)))
    assert store.load(PATH) == list(range(100))
    assert store.claim_holder(PATH)[0] == other  # its claim is still its own
    assert json.loads(claim.read_text()) == json.loads(other)


def test_a_held_claim_leaves_no_descriptor_open(tmp_path):
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to count open descriptors")
    store = pipex.FileStore(tmp_path)
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(RuntimeError), held(store, PATH, stage=True):
        raise RuntimeError("the task failed before its save")
    with held(store, PATH, stage=True) as mine:
        store.save(PATH, 1)
    with held(store, PATH, stage=True) as mine:
        assert not mine  # written meanwhile: the claim just made is let go
    with held(store, "out/step/big.pkl", stage=True):
        store.save("out/step/big.pkl", b"x" * 3_000_000)  # many writes through the claim
    assert len(os.listdir("/proc/self/fd")) == before
    assert store.load("out/step/big.pkl") == b"x" * 3_000_000
    assert sorted(os.listdir(tmp_path / "out/step")) == ["big.pkl", "page-001.pkl"]


def test_a_save_inside_a_held_claim_writes_the_target_and_ends_the_claim(store):
    with held(store, PATH, stage=True) as mine:
        assert mine
        store.save(PATH, [1, 2])
    assert store.claim_holder(PATH) is None
    assert store.load(PATH) == [1, 2]
    assert store.claim(PATH, new_owner())  # free for the next runner


def test_a_target_to_rewrite_is_claimed_and_run_though_it_exists(store):
    store.save(PATH, "old")  # stale: its task runs again
    with held(store, PATH) as mine:
        assert not mine  # an existing target, without rewrite, was written by another runner
    with held(store, PATH, stage=True, rewrite=True) as mine:
        assert mine
        store.save(PATH, "new")
    assert store.load(PATH) == "new"
