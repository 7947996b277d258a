"""A family renders every item's target in bulk exactly as the item's node renders it."""

from __future__ import annotations

import os

import pytest

import pipex


@pipex.task(target="{path}/first/{page}.pkl")
def first(page: str) -> str:
    return page


@pipex.task(target="{path}/second/{x.stem}-{size}.pkl")
def second(x: str, size: int = 1) -> str:
    return x


@pipex.task
def plain_default(x: str, n: int) -> str:
    return x


@pipex.task(target=lambda path, page: f"{path}/called/{page}.txt")
def called(page: str) -> str:
    return page


@pytest.mark.parametrize("path", ["out", "out/", "memory://bucket/run"])
def test_bulk_targets_are_the_nodes_targets(workdir, path):
    pages = ["a", "b.c", "d-1", "7"]
    with pipex.context(path=path):
        one = first.map(pages)
        two = second.map(one, size=3)
        three = plain_default.map(two, range(4))
        four = called.map(pages)
    for mapped in (one, two, three, four):
        assert [t for t in mapped.targets] == [node.target for node in mapped]
        assert [mapped.family.key(i) for i in range(len(mapped))] == [n.key for n in mapped]


def test_a_value_that_would_leave_the_folder_is_refused_in_bulk(workdir):
    with pipex.context(path="out"):
        m = first.map(["fine", "../escape"])
    with pytest.raises(pipex.TargetError, match="escape"):
        list(m.targets)
    assert not os.path.exists("out")


def test_two_items_rendering_one_target_collide(workdir):
    with pipex.context(path="out"):
        m = first.map(["same", "same"])
    with pytest.raises(pipex.TargetCollisionError, match="items 0 and 1"):
        pipex.compute(m, progress=False)
