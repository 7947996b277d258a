"""Leftovers: temporaries beside targets and the trash, found and removed."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest

import pipex
from pipex.steer.clean import leftovers
from pipex.steer.graph import Graph
from pipex.stores import owners
from pipex.stores.atomic import temporary_name
from pipex.stores.claims import claim_path, new_owner
from tests.stores.conftest import STORES
from tests.stores.writers import BIG, kill_mid_save


def test_temporaries_and_trash_are_found_and_removed(chains):
    pipeline = chains(3)
    pipeline.compute()
    stale = Path("out/clean") / temporary_name("1.pkl")
    stale.write_bytes(b"half a file")
    Path("out/clean/.hidden-but-mine.pkl").write_bytes(b"keep")
    pipex.invalidate(pipeline.roots[0])

    found = leftovers(Graph(pipeline.roots).nodes)

    assert [t.path for t in found.temporaries] == [f"out/clean/{stale.name}"]
    assert found.trashed == 1
    found.remove()
    assert not stale.exists()
    assert Path("out/clean/.hidden-but-mine.pkl").exists()
    assert not os.path.exists(".pipex-trash")
    assert pipex.restore() == []
    assert leftovers(Graph(pipeline.roots).nodes).temporaries == []


def test_expired_claims_are_found_and_removed_live_ones_kept(chains):
    pipeline = chains(3)
    pipeline.compute()
    store = pipeline.roots[0].target.store
    dead = json.dumps({"host": "another-host", "pid": 1, "id": "dead"})
    live = new_owner()
    assert store.claim("out/clean/1.pkl", dead)
    assert store.claim("out/clean/2.pkl", live)
    old = time.time() - 3600
    os.utime(store.fspath(claim_path("out/clean/1.pkl")), (old, old))  # no heartbeat for 1 h

    found = leftovers(Graph(pipeline.roots).nodes)

    assert [(t.path, owner) for t, owner in found.claims] == [("out/clean/1.pkl", dead)]
    assert found.temporaries == []
    found.remove()
    assert store.claim_holder("out/clean/1.pkl") is None
    assert store.claim_holder("out/clean/2.pkl")[0] == live
    assert leftovers(Graph(pipeline.roots).nodes).claims == []


def test_claims_of_runners_killed_while_making_or_writing_them_are_found(chains, tmp_path):
    pipeline = chains(3)
    pipeline.compute()
    store = pipeline.roots[0].target.store
    kill_mid_save(store, "out/clean/9.pkl", tmp_path, claimed=True)  # data in its claim
    empty = Path(store.fspath(claim_path("out/clean/1.pkl")))
    empty.write_bytes(b"")  # killed between making the claim and writing its owner
    old = time.time() - 30
    os.utime(empty, (old, old))

    found = leftovers(Graph(pipeline.roots).nodes)

    assert sorted((t.path, owner) for t, owner in found.claims) == [
        ("out/clean/1.pkl", owners.UNREADABLE),
        ("out/clean/9.pkl", store.claim_holder("out/clean/9.pkl")[0]),
    ]
    assert json.loads(found.claims[-1][1])["pid"] != os.getpid()
    found.remove()
    assert sorted(os.listdir("out/clean")) == ["0.pkl", "1.pkl", "2.pkl"]


@pytest.mark.parametrize("kind", ["s3", "sqlite"])
def test_a_killed_writer_s_local_temporary_and_claim_are_found_on_every_store(
    kind, request, chains, tmp_path, monkeypatch
):
    store = STORES[kind](tmp_path, request)
    pipeline = chains(3, store=store)
    pipeline.compute()
    kill_mid_save(store, "out/clean/9.pkl", tmp_path, claimed=True)
    staging = tmp_path / "staging"  # the killed writer's TMPDIR: this process looks there too
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    left = sorted(str(p) for p in staging.rglob("*") if p.is_file())
    if kind == "s3":  # staged locally, then uploaded in one PUT: the kill left it full-size
        assert len(left) == 1 and os.path.getsize(left[0]) >= BIG

    found = leftovers(Graph(pipeline.roots).nodes)

    assert [(t.path, t.store) for t, _ in found.claims] == [("out/clean/9.pkl", store)]
    assert sorted(found.staged) == left
    found.remove()
    assert [p for p in staging.rglob("*") if p.is_file()] == []
    assert store.claim_holder("out/clean/9.pkl") is None
    again = leftovers(Graph(pipeline.roots).nodes)
    assert (again.claims, again.staged) == ([], [])
    assert store.exists_many(["out/clean/0.pkl", "out/clean/9.pkl"]) == [True, False]
