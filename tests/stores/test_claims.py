"""Claims on every store: exclusive, held by their owner, renewed, released, never a target;
and a store written against the old interface grants every claim."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import dask
import psutil
import pytest

import pipex
from pipex.stores import claims, owners
from pipex.stores.claims import held, new_owner
from tests.integration.processes import environment
from tests.stores.writers import BIG, kill_mid_save, pickled

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
    gone = json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "id": "x"})
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
    while owners.running(pid):
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
        pytest.skip("needs /proc/self/fd to see open descriptors")
    store = pipex.FileStore(tmp_path)
    with pytest.raises(RuntimeError), held(store, PATH, stage=True):
        raise RuntimeError("the task failed before its save")
    with held(store, PATH, stage=True) as mine:
        store.save(PATH, 1)
    with held(store, PATH, stage=True) as mine:
        assert not mine  # written meanwhile: the claim just made is let go
    with held(store, "out/step/big.pkl", stage=True):
        store.save("out/step/big.pkl", b"x" * 3_000_000)  # many writes through the claim
    with held(store, "out/step/kept.pkl", stage=True):
        pass  # claimed, never saved
    # Only descriptors on this test's files count: other tests' threads and connections
    # may open and close theirs meanwhile.
    assert _open_under(tmp_path) == []
    assert store.load("out/step/big.pkl") == b"x" * 3_000_000
    assert sorted(os.listdir(tmp_path / "out/step")) == ["big.pkl", "page-001.pkl"]


def test_an_open_claim_descriptor_is_seen(tmp_path):
    """The check above can fail: a claim kept open is a descriptor under the test's folder."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to see open descriptors")
    store = pipex.FileStore(tmp_path)
    with held(store, PATH, stage=True):
        assert _open_under(tmp_path) == [str(tmp_path / claims.claim_path(PATH))]
    assert _open_under(tmp_path) == []


def _open_under(folder) -> list[str]:
    """The files under ``folder`` this process has a descriptor open on."""
    found = []
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor, say)
        if target.startswith(f"{folder}{os.sep}"):
            found.append(target)
    return found


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


# -- a claim whose owner cannot be read, or is gone --------------------------------------------


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_runner_killed_while_writing_through_its_claim_is_taken_over_at_once(tmp_path, caplog):
    store = pipex.FileStore(tmp_path / "root")
    kill_mid_save(store, PATH, tmp_path, claimed=True)
    claim = tmp_path / "root" / claims.claim_path(PATH)
    assert claim.stat().st_size >= BIG  # the data went into the claim
    start = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="pipex.stores.claims"),
        held(store, PATH, stage=True) as mine,
    ):
        assert mine
        store.save(PATH, "after")
    assert time.monotonic() - start < 20  # at once, not after the 60 s timeout
    assert store.load(PATH) == "after"
    assert "is gone" in caplog.text
    assert "xxxx" not in caplog.text and "\ufffd" not in caplog.text  # no data shown


@pytest.mark.parametrize(
    "content",
    [b"", b'{"host": "ha', b"\x80\x05\x95\x00binary data"],
    ids=["empty", "partial", "binary"],
)
def test_a_claim_without_a_readable_owner_is_an_orphan_after_a_few_seconds(
    tmp_path, caplog, content
):
    store = pipex.FileStore(tmp_path)
    claim = tmp_path / claims.claim_path(PATH)
    claim.parent.mkdir(parents=True)
    claim.write_bytes(content)  # a runner killed before it wrote its record, say
    assert not claims.expired(store.claim_holder(PATH), seconds=3600)  # may be writing it
    old = time.time() - 30
    os.utime(claim, (old, old))
    assert claims.expired(store.claim_holder(PATH), seconds=3600)
    with caplog.at_level(logging.WARNING, logger="pipex.stores.claims"), held(store, PATH) as m:
        assert m
    assert "an unreadable owner record" in caplog.text
    assert "binary" not in caplog.text and "\ufffd" not in caplog.text


class _Peek:
    """Pickled after the data before it: looks at the claim's owner in the middle of a save."""

    def __init__(self, store, seen):
        self.store, self.seen = store, seen

    def __reduce__(self):
        self.seen.append(self.store.claim_holder(PATH)[0])
        return (int, ())


def test_the_owner_of_a_claim_written_through_stays_readable(tmp_path):
    store = pipex.FileStore(tmp_path)
    seen = []
    with held(store, PATH, stage=True):
        inode = (tmp_path / claims.claim_path(PATH)).stat().st_ino
        store.save(PATH, [b"x" * 100_000, _Peek(store, seen)])
    assert json.loads(seen[0])["pid"] == os.getpid()
    assert (tmp_path / PATH).stat().st_ino == inode  # written through the claim still
    assert store.load(PATH) == [b"x" * 100_000, 0]
    assert "user.pipex.owner" not in os.listxattr(tmp_path / PATH)  # the target keeps none
    assert store.claim("out/step/other.pkl", new_owner())
    short = os.getxattr(tmp_path / claims.claim_path("out/step/other.pkl"), "user.pipex.owner")
    assert 0 < len(short) <= 48  # kept inside an ext4 inode: no disk block per claim


def test_without_extended_attributes_the_data_is_staged_beside_the_claim(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):  # a filesystem without user extended attributes
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", refuse)
    store = pipex.FileStore(tmp_path)
    seen = []
    with held(store, PATH, stage=True):
        store.save(PATH, [b"x" * 100_000, _Peek(store, seen)])
    assert json.loads(seen[0])["pid"] == os.getpid()
    assert store.load(PATH) == [b"x" * 100_000, 0]
    assert os.listdir(tmp_path / "out/step") == ["page-001.pkl"]


# -- an owner on this host holds its claim while its process runs ---------------------------

_SILENT_OWNER = textwrap.dedent(
    """
    import os, pickle, sys, time
    from pipex.stores.claims import new_owner

    with open(sys.argv[1], "rb") as file:
        store = pickle.load(file)
    owner = new_owner()
    assert store.claim(sys.argv[2], owner)  # no heartbeat: as while a task holds the GIL
    print("claimed", flush=True)
    while not os.path.exists(sys.argv[3]):
        time.sleep(0.02)
    store.save(sys.argv[2], "written by the owner")
    store.release(sys.argv[2], owner)
    """
)


def test_a_live_owner_of_this_host_holds_its_claim_past_the_timeout(shared_store, tmp_path):
    go = tmp_path / "go"
    owner = subprocess.Popen(
        [sys.executable, "-c", _SILENT_OWNER, pickled(shared_store, tmp_path), PATH, str(go)],
        stdout=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    outcome = []
    try:
        assert owner.stdout.readline().strip() == "claimed"
        with dask.config.set({"pipex.claims.timeout": "1s"}):
            time.sleep(2.2)  # its heartbeat is older than the timeout (S3 keeps seconds)
            assert not claims.expired(shared_store.claim_holder(PATH), claims.timeout())

            def wait():
                with held(shared_store, PATH) as mine:
                    outcome.append(mine)

            waiting = threading.Thread(target=wait)
            waiting.start()
            time.sleep(1.5)
            assert outcome == []  # still waiting for the live owner
            go.touch()
            waiting.join(60)
        assert owner.wait(60) == 0
    finally:
        go.touch()
        owner.kill()
        owner.wait()
    assert outcome == [False]  # not taken over: the owner wrote it
    assert shared_store.load(PATH) == "written by the owner"


def test_a_reused_process_id_does_not_hold_a_claim():
    here = socket.gethostname()
    start = psutil.Process().create_time()
    mine = json.dumps({"host": here, "pid": os.getpid(), "start": start, "id": "x"})
    reused = json.dumps({"host": here, "pid": os.getpid(), "start": start - 3600, "id": "x"})
    now = time.time()
    assert not claims.expired((mine, now - 7200), seconds=60)  # alive: the beat's age is moot
    assert claims.expired((reused, now), seconds=3600)  # another process has its id now


def test_a_takeover_from_another_host_says_to_raise_the_timeout_for_long_tasks(tmp_path, caplog):
    store = pipex.FileStore(tmp_path)
    foreign = json.dumps({"host": "another-host", "pid": 1, "id": "x"})
    assert store.claim(PATH, foreign)
    old = time.time() - 120
    os.utime(tmp_path / claims.claim_path(PATH), (old, old))
    with caplog.at_level(logging.WARNING, logger="pipex.stores.claims"), held(store, PATH) as m:
        assert m
    assert "another-host" in caplog.text and "raise pipex.claims.timeout" in caplog.text


def test_a_stamp_changes_when_a_target_is_written_again(store):
    assert store.stamp(PATH) is None
    store.save(PATH, 1)
    first = store.stamp(PATH)
    assert first is not None and store.stamp(PATH) == first
    time.sleep(1.1)  # S3 keeps times to the second
    store.save(PATH, 2)
    assert store.stamp(PATH) not in (None, first)


def test_runners_taking_over_one_dead_claim_at_once_do_not_both_run_it(shared_store):
    """A claim whose owner is gone, taken over by eight runners at once (threads, each its
    own owner, each doing what a runner does: release the expired claim, then claim),
    twenty times: one of them gets it each time."""
    dead = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "start": 1.0, "id": "x"})

    def take(path: str, barrier: threading.Barrier) -> bool:
        mine = new_owner()
        barrier.wait()
        holder = shared_store.claim_holder(path)
        if holder is not None and owners.expired(holder, 60):
            shared_store.release(path, holder[0])
        return shared_store.claim(path, mine)

    granted = []
    for trial in range(20):
        path = f"out/step/dead-{trial}.pkl"
        assert shared_store.claim(path, dead)
        barrier = threading.Barrier(8)
        with ThreadPoolExecutor(8) as pool:
            granted.append(sum(pool.map(take, [path] * 8, [barrier] * 8)))
    assert granted == [1] * 20
