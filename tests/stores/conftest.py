"""The stores every conformance test runs against: one factory per store class."""

from __future__ import annotations

import uuid

import pytest

import pipex


def _file_store(tmp_path, request):
    return pipex.FileStore(tmp_path / "root")


def _memory_store(tmp_path, request):
    return pipex.MemoryStore()


def _sqlite_store(tmp_path, request):
    return pipex.SQLiteStore(tmp_path / "targets.db")


def _fsspec_memory_store(tmp_path, request):
    return pipex.FsspecStore(f"memory://pipex-test-{uuid.uuid4().hex}/root")


def _s3_store(tmp_path, request):
    server = request.getfixturevalue("s3_server")
    return pipex.FsspecStore(f"s3://{server.new_bucket()}/root", **server.options)


#: name -> factory(tmp_path, request) -> a fresh, empty store. A new store adds one line here.
STORES = {
    "file": _file_store,
    "memory": _memory_store,
    "sqlite": _sqlite_store,
    "fsspec-memory": _fsspec_memory_store,
    "s3": _s3_store,
}

#: The stores whose targets other processes on this machine see.
SHARED = {"file", "sqlite", "s3"}


@pytest.fixture(params=sorted(STORES))
def store(request, tmp_path):
    """A fresh, empty store of each kind."""
    return STORES[request.param](tmp_path, request)


@pytest.fixture(params=sorted(SHARED))
def shared_store(request, tmp_path):
    """A fresh, empty store of each kind that other processes see."""
    return STORES[request.param](tmp_path, request)
