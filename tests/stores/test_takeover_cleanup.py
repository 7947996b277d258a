"""A run that takes over a dead runner's claim removes what that runner left: its staged
file (S3, SQLite stage locally) and, on S3, claim objects beside targets it had uploaded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid

import pytest

import pipex
from pipex.stores.atomic import staging_folder
from pipex.stores.claims import claim_path
from tests.integration.processes import environment

#: One ``save=False`` task writing target argv[3] in the store argv[1] (``sqlite``: the
#: database argv[2]; ``s3``: the URL argv[2]); with argv[4] == "hang", it writes a little,
#: prints "writing" and never ends.
SCRIPT = textwrap.dedent(
    """
    import sys, time
    import pipex

    kind, where, name = sys.argv[1], sys.argv[2], sys.argv[3]
    hang = len(sys.argv) > 4 and sys.argv[4] == "hang"
    store = pipex.SQLiteStore(where) if kind == "sqlite" else pipex.FsspecStore(where)

    @pipex.task(target="{name}.txt", store=store, save=False)
    def page(name, target):
        with open(target, "wb") as file:
            file.write(b"partial" if hang else b"whole")
            file.flush()
            if hang:
                print("writing", flush=True)
                while True:
                    time.sleep(1)

    pipex.compute(page(name), progress=False, scheduler="sync")
    """
)


@pytest.fixture(params=["sqlite", "s3"])
def place(request, tmp_path):
    """(kind, where, extra environment) of a store that stages its writes locally."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "targets.db"), {}
    server = request.getfixturevalue("s3_server")
    return "s3", f"s3://{server.new_bucket()}/root", server.environment


def _staged(name: str) -> list[str]:
    try:
        return [n for n in os.listdir(staging_folder()) if n.startswith(f".{name}.")]
    except FileNotFoundError:
        return []


def test_a_run_taking_over_a_killed_writers_claim_removes_its_staged_file(place, tmp_path):
    kind, where, extra = place
    name = f"page-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "pipeline.py"
    script.write_text(SCRIPT)
    env = environment(extra)
    writer = subprocess.Popen(
        [sys.executable, str(script), kind, where, name, "hang"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        assert _staged(name)  # its staged file, in the local staging folder
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait()
    assert _staged(name)  # left behind

    again = subprocess.run(
        [sys.executable, str(script), kind, where, name],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )

    assert again.returncode == 0, again.stderr
    assert "taking over the claim" in again.stderr
    assert _staged(name) == []
    store = pipex.SQLiteStore(where) if kind == "sqlite" else _s3(where, extra)
    assert store.load(f"{name}.txt") == "whole"
    assert store.claim_holder(f"{name}.txt") is None


def _s3(url: str, extra: dict[str, str]) -> pipex.FsspecStore:
    options = {
        "endpoint_url": extra["FSSPEC_S3_ENDPOINT_URL"],
        "key": extra["FSSPEC_S3_KEY"],
        "secret": extra["FSSPEC_S3_SECRET"],
    }
    return pipex.FsspecStore(url, **options)


def test_an_expired_claim_beside_an_uploaded_target_is_removed_when_seen(s3_server):
    """A runner killed between uploading a target and removing its claim: the next look at
    the folder removes the claim."""
    store = pipex.FsspecStore(f"s3://{s3_server.new_bucket()}/root", **s3_server.options)
    dead = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "start": 1.0, "id": "x"})
    live = pipex.stores.claims.new_owner()
    for name, owner in (("a.pkl", dead), ("b.pkl", live)):
        store.save(f"out/{name}", 1)
        assert store.claim(f"out/{name}", owner)

    assert store.exists_many(["out/a.pkl", "out/b.pkl", "out/c.pkl"]) == [True, True, False]

    fs = store.filesystem
    fs.invalidate_cache()
    assert not fs.exists(store.location(claim_path("out/a.pkl")))
    assert fs.exists(store.location(claim_path("out/b.pkl")))  # its owner runs: kept
