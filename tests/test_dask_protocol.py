"""Nodes as dask collections: dask.compute / node.compute prune through __dask_optimize__."""

from __future__ import annotations

import os
import threading
from collections import Counter

import dask
import pytest

import pipex
import pipex.core.plan


def two_steps(calls: Counter[str], bad: frozenset[int] = frozenset()):
    @pipex.task(target="{path}/up/{i}.pkl")
    def up(i):
        calls["up", i] += 1
        if i in bad:
            raise ValueError(f"up({i}) cannot run")
        return i

    @pipex.task(target="{path}/down/{x.stem}.pkl")
    def down(x):
        calls["down", x] += 1
        return x + 100

    return up, down


@pytest.mark.parametrize(
    "compute",
    [lambda node: dask.compute(node)[0], lambda node: node.compute()],
    ids=["dask.compute", "node.compute"],
)
def test_dask_compute_and_node_compute_run_only_what_is_missing(workdir, compute):
    calls: Counter[str] = Counter()
    up, down = two_steps(calls)

    node = down(up(1))
    assert compute(node) == node.target
    assert node.target.load() == 101
    assert calls == {("up", 1): 1, ("down", 1): 1}

    assert compute(down(up(1))) == node.target
    assert calls == {("up", 1): 1, ("down", 1): 1}

    os.remove(node.target)
    assert compute(down(up(1))) == node.target
    assert calls == {("up", 1): 1, ("down", 1): 2}
    assert node.target.load() == 101


def test_dask_compute_never_opens_the_upstream_of_an_existing_target(workdir):
    calls: Counter[str] = Counter()
    up, down = two_steps(calls)
    node = down(up(1))
    pipex.compute(node)
    with open(node.deps[0].target, "wb") as file:
        file.write(b"\x00garbage\xff")

    assert dask.compute(down(up(1))) == (node.target,)
    assert calls == {("up", 1): 1, ("down", 1): 1}


def test_dask_compute_of_several_nodes_prunes_each(workdir):
    calls: Counter[str] = Counter()
    up, down = two_steps(calls)
    pipex.compute(down(up(1)))
    calls.clear()

    a, b, c = down(up(1)), down(up(2)), up(3)
    assert dask.compute(a, b, c) == (a.target, b.target, c.target)
    assert calls == {("up", 2): 1, ("down", 2): 1, ("up", 3): 1}
    assert [n.target.load() for n in (a, b, c)] == [101, 102, 3]


def test_is_dask_collection_does_not_build_the_graph(workdir, monkeypatch):
    up, down = two_steps(Counter())
    resolved = []
    real_resolve = pipex.core.plan.resolve

    def counting_resolve(roots, check=True):
        resolved.append(check)
        return real_resolve(roots, check)

    monkeypatch.setattr(pipex.core.plan, "resolve", counting_resolve)
    node = down(up(1))

    assert dask.is_dask_collection(node)
    assert resolved == []

    # Reading the graph builds it (so the counter above does see a build).
    assert set(node.__dask_graph__()) == {node.dask_key, node.deps[0].dask_key}
    assert resolved == [False]


def test_dask_compute_does_not_build_the_graph_below_a_finished_target(workdir, monkeypatch):
    calls: Counter[str] = Counter()
    up, down = two_steps(calls)
    pipex.compute(down(up(1)))
    visited = []
    real_resolve = pipex.core.plan.resolve

    def counting_resolve(roots, check=True):
        plan = real_resolve(roots, check)
        visited.append((check, sorted(n.task.name for n in plan.missing)))
        return plan

    monkeypatch.setattr(pipex.core.plan, "resolve", counting_resolve)
    node = down(up(1))

    assert dask.compute(node) == (node.target,)
    # Only a checking resolution, which stops at the finished root: `up` is never visited.
    assert visited == [(True, [])]
    assert calls == {("up", 1): 1, ("down", 1): 1}


def test_dask_compute_with_the_sync_scheduler(workdir):
    calls: Counter[str] = Counter()
    up, down = two_steps(calls)
    threads = set()

    @pipex.task(target="{path}/where/{x.stem}.pkl")
    def where(x):
        threads.add(threading.current_thread().name)
        return x

    nodes = [where(down(up(i))) for i in range(4)]
    results = dask.compute(*nodes, scheduler="sync")

    assert results == tuple(n.target for n in nodes)
    assert threads == {threading.main_thread().name}
    assert [n.target.load() for n in nodes] == [100, 101, 102, 103]


def test_a_failing_task_under_dask_compute_raises_its_own_exception(workdir):
    calls: Counter[str] = Counter()
    up, down = two_steps(calls, bad=frozenset({2}))
    node = down(up(2))

    with pytest.raises(ValueError, match=r"up\(2\) cannot run") as info:
        dask.compute(node)

    assert not isinstance(info.value, ExceptionGroup)
    assert calls == {("up", 2): 1}
    assert not node.target.exists()
    assert not node.deps[0].target.exists()
