"""The stores every conformance test runs against: one factory per store class."""

from __future__ import annotations

import pytest

import pipex


def _file_store(tmp_path):
    return pipex.FileStore(tmp_path / "root")


#: name -> factory(tmp_path) -> a fresh, empty store. A new store adds one line here.
STORES = {"file": _file_store}


@pytest.fixture(params=sorted(STORES))
def store(request, tmp_path):
    """A fresh, empty store of each kind."""
    return STORES[request.param](tmp_path)
