"""Cluster and Prefect fixtures shared by the integration tests (one session-scoped Prefect
server and cluster, whichever modules use them)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile

import pytest

from tests.integration.processes import local_cluster

# `import prefect` creates $PREFECT_HOME and reads its settings once: point both at a
# throwaway folder before the first import, and keep it offline.
_HOME = None
if importlib.util.find_spec("prefect") is not None and "prefect" not in sys.modules:
    _HOME = tempfile.mkdtemp(prefix="pipex-prefect-home-")
    os.environ["PREFECT_HOME"] = _HOME
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


@pytest.fixture(scope="module")
def local_client():
    """One LocalCluster of two single-threaded worker processes for the module, and a client
    to it that is not the default one: each test says how it uses it."""
    distributed = pytest.importorskip("distributed")
    with (
        local_cluster(2) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture
def one_worker():
    """A LocalCluster with one single-threaded worker process, and a client to it."""
    distributed = pytest.importorskip("distributed")
    with (
        local_cluster(1) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(scope="session")
def prefect_api():
    """A temporary Prefect server; its URL is in the environment of every process started."""
    from prefect.settings import get_current_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120), pytest.MonkeyPatch.context() as mp:
        url = get_current_settings().api.url
        # dask workers and subprocesses do not see the harness's settings, only the
        # environment: without this each would start its own server
        mp.setenv("PREFECT_API_URL", url)
        yield url
    if _HOME is not None:
        shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(prefect_api):
    """Two single-threaded worker processes that can import the tests package."""
    with local_cluster(2, dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture
def dask_runner(cluster):
    """The flows' task runner: the session's cluster, by address (a cluster object fails
    to serialize in these versions)."""
    prefect_dask = pytest.importorskip("prefect_dask")
    return prefect_dask.DaskTaskRunner(address=cluster.scheduler_address)


@pytest.fixture
def prefect_cache(monkeypatch):
    monkeypatch.setenv("PIPEX", "prefect+cache")
