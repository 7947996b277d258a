"""Cluster fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from tests.integration.processes import local_cluster


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
