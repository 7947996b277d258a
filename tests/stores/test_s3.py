"""S3 through s3fs against moto's standalone server: fsspec's configuration, request counts,
one PUT per write, errors without credentials."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import pipex
from tests.integration.processes import environment

s3fs = pytest.importorskip("s3fs")


def _chains(store, chains, calls):
    """``chains`` chains of two steps, in two folders, on ``store``."""

    @pipex.task(target="{path}/s1/{c}.pkl", store=store)
    def s1(c):
        calls.append(c)
        return c

    @pipex.task(target="{path}/s2/{c}.pkl", store=store)
    def s2(x, c):
        calls.append(c)
        return x + 1

    with pipex.context(path="run"):
        return [s2(s1(c), c) for c in range(chains)]


def test_an_all_done_restart_costs_requests_per_folder_not_per_target(s3_server):
    counts = {}
    for chains in (20, 400):
        store = pipex.FsspecStore(f"s3://{s3_server.new_bucket()}", **s3_server.options)
        calls = []
        pipex.compute(_chains(store, chains, calls), scheduler="threads", progress=False)
        assert len(calls) == 2 * chains
        nodes = _chains(store, chains, calls)
        before = s3_server.requests()
        pipex.compute(nodes, scheduler="threads", progress=False)
        counts[chains] = s3_server.requests() - before
        assert len(calls) == 2 * chains  # nothing ran again
    assert counts[20] == counts[400] == 1  # one listing of run/s2/, whatever the count


def test_a_save_is_one_put_of_the_finished_file(s3_server):
    store = pipex.FsspecStore(f"s3://{s3_server.new_bucket()}/root", **s3_server.options)
    before = s3_server.log.read_text()
    store.save("out/big.pkl", b"x" * 3_000_000)
    sent = s3_server.log.read_text()[len(before) :]
    assert sent.count('"PUT ') == 1 and '"POST ' not in sent, sent
    assert store.load("out/big.pkl") == b"x" * 3_000_000


def test_a_missing_bucket_is_a_store_error_without_credentials(s3_server):
    options = {**s3_server.options, "secret": "SECRET-VALUE-123"}
    store = pipex.FsspecStore("s3://pipex-no-such-bucket/root", **options)
    with pytest.raises(pipex.StoreError, match="cannot write target s3://pipex-no-such") as info:
        store.save("out/a.pkl", 1)
    assert "SECRET-VALUE-123" not in str(info.value)
    assert store.exists_many(["out/a.pkl", "out/b.pkl"]) == [False, False]


_PIPELINE = textwrap.dedent(
    """
    import sys
    import pipex

    @pipex.task(target="{path}/square/{x}.json")
    def square(x):
        print("ran", x)
        return x * x

    with pipex.context(path=sys.argv[1]):
        nodes = [square(x) for x in range(4)]
    print(pipex.compute(nodes, load=True, progress=False)[0])
    """
)


@pytest.mark.slow
def test_fsspec_environment_configuration_moves_a_pipeline_to_s3(s3_server, tmp_path):
    bucket = s3_server.new_bucket()
    env = environment(s3_server.environment)
    runs = [
        subprocess.run(
            [sys.executable, "-c", _PIPELINE, f"s3://{bucket}/run1"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stdout.count("ran") == 4 and "[0, 1, 4, 9]" in runs[0].stdout
    assert "ran" not in runs[1].stdout and "[0, 1, 4, 9]" in runs[1].stdout
    fs = s3fs.S3FileSystem(**s3_server.options)
    assert sorted(fs.ls(f"{bucket}/run1/square")) == [
        f"{bucket}/run1/square/{x}.json" for x in range(4)
    ]
    assert list(tmp_path.iterdir()) == []  # nothing local
