"""Leftovers: temporaries beside targets and the trash, found and removed."""

from __future__ import annotations

import os
from pathlib import Path

import pipex
from pipex.steer.clean import leftovers
from pipex.steer.graph import Graph
from pipex.stores.atomic import temporary_name


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
