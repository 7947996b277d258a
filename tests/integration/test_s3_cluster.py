"""A LocalCluster whose workers reach the targets only through S3 (moto's server on
127.0.0.1), configured the fsspec way: ``FSSPEC_S3_*`` environment variables."""

from __future__ import annotations

import os

import pytest

import pipex
from tests import pipelines
from tests.integration.processes import local_cluster

distributed = pytest.importorskip("distributed")
fsspec = pytest.importorskip("fsspec")
s3fs = pytest.importorskip("s3fs")

pytestmark = pytest.mark.slow


def test_a_cluster_without_a_shared_folder_runs_and_skips_through_s3(
    s3_server, workdir, monkeypatch
):
    bucket = s3_server.new_bucket()
    for name, value in s3_server.environment.items():  # the workers' configuration ...
        monkeypatch.setenv(name, value)
    conf: dict = {}
    fsspec.config.set_conf_env(conf)  # ... and this process's, read after fsspec's import
    monkeypatch.setitem(fsspec.config.conf, "s3", conf["s3"])
    log = str(workdir / "calls.log")
    names = ["a", "bb", "ccc"]

    def build():
        with pipex.context(path=f"s3://{bucket}/run1"):  # the only change from a local run
            doubled = pipelines.chains(names, log)
            return pipelines.total(doubled, "all", log)

    with (
        local_cluster(2) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
        client.as_current(),
    ):
        (target,) = pipex.compute(build())
        recorded = pipelines.calls(log)
        assert len(recorded) == 7
        assert os.getpid() not in {pid for _, _, pid in recorded}  # the workers ran them
        assert pipex.compute(build(), load=True) == (12,)
        assert len(pipelines.calls(log)) == 7  # nothing ran again

    assert str(target) == f"s3://{bucket}/run1/total/all.pkl"
    fs = s3fs.S3FileSystem(**s3_server.options)
    assert sorted(fs.ls(f"{bucket}/run1")) == [
        f"{bucket}/run1/{step}" for step in ("double", "source", "total")
    ]
    assert len(fs.ls(f"{bucket}/run1/double")) == 3
    assert sorted(p.name for p in workdir.iterdir()) == ["calls.log"]  # no target is local
