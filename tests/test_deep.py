"""Deep graphs and deeply nested arguments: no walker recurses once per level.

A chain of thousands of calls, or an argument nested thousands of levels deep, must build,
render, resolve, run, skip, report, pickle and draw like a shallow one.
"""

from __future__ import annotations

import pickle

import cloudpickle
import dask
import pytest

import pipex

DEPTH = 5000


#: The calls of :func:`inc` made by the running test.
CALLS: list[int] = []


@pipex.task
def inc(x):
    CALLS.append(1)
    return (x if isinstance(x, int) else 0) + 1


@pipex.task(target="{path}/deep/{i}.pkl")
def step(previous, i):
    CALLS.append(i)
    return i


def steps(length: int = DEPTH) -> pipex.Node:
    """``length`` calls of :func:`step` (named targets), each taking the one before."""
    node = None
    for i in range(length):
        node = step(node, i)
    return node


@pytest.fixture
def calls() -> list[int]:
    CALLS.clear()
    return CALLS


def chain(length: int = DEPTH) -> pipex.Node:
    """``length + 1`` calls of :func:`inc` (default target), each taking the one before."""
    node = inc(0)
    for _ in range(length):
        node = inc(node)
    return node


def test_a_deep_chain_with_default_targets_runs_once_then_is_skipped(workdir, calls):
    node = chain()
    assert node.target.path.startswith("pipex-out/inc/")
    assert pipex.compute(node, load=True, progress=False) == (DEPTH + 1,)
    assert len(calls) == DEPTH + 1

    calls.clear()
    rebuilt = chain()
    assert rebuilt.target == node.target  # the same tokens in a new graph
    assert pipex.compute(rebuilt, progress=False) == (node.target,)
    assert calls == []


def test_dask_compute_of_a_deep_chain(workdir, calls):
    node = chain()
    assert dask.compute(node) == (node.target,)
    assert len(calls) == DEPTH + 1
    assert node.target.load() == DEPTH + 1


def test_a_deep_chain_built_twice_is_one_pipeline(workdir, calls):
    """The same calls made as two node objects are compared call by call, to the bottom."""
    first, second = steps(), steps()
    assert pipex.compute(first, second, progress=False) == (first.target, first.target)
    assert sorted(calls) == list(range(DEPTH))


@pytest.mark.parametrize("make", [chain, steps])
def test_a_deep_chain_pickles_and_comes_back_whole(workdir, calls, make):
    node = make()
    target = node.target
    edges, bottom = (DEPTH, chain(0)) if make is chain else (DEPTH - 1, steps(1))
    for dumps in (pickle.dumps, cloudpickle.dumps):
        copy = pickle.loads(dumps(node))
        assert copy.target == target
        assert copy.key == node.key
        depth, below = 0, copy
        while below.deps:
            (below,) = below.deps
            depth += 1
        assert depth == edges
        assert below.target == bottom.target
    pipex.compute(node, progress=False)
    ran = len(calls)
    assert pipex.compute(pickle.loads(pickle.dumps(node)), progress=False) == (target,)
    assert len(calls) == ran == edges + 1


def test_status_invalidate_and_visualize_a_deep_chain(workdir, calls):
    node = steps()
    assert pipex.status(node).steps["step"].to_run == DEPTH
    pipex.compute(node, progress=False)
    status = pipex.status(node)
    assert [t.path for t in status.done] == [node.target.path]

    bottom = node
    while bottom.deps:
        (bottom,) = bottom.deps
    removed = pipex.invalidate(bottom, within=[node], dry_run=True)
    assert len(removed) == DEPTH

    drawn = pipex.visualize(node, filename="steps.svg")
    assert "step" in (workdir / drawn).read_text()
    drawn = pipex.visualize(node, filename="nodes.dot", max_boxes=DEPTH)
    assert (workdir / drawn).read_text().count("->") == DEPTH - 1


def nested(depth: int, leaf: object) -> list[object]:
    value: object = leaf
    for _ in range(depth):
        value = [value]
    return value  # type: ignore[return-value]


def unwrap(value: object) -> object:
    while isinstance(value, list):
        (value,) = value
    return value


def test_a_deeply_nested_argument_renders_runs_and_is_skipped(workdir):
    calls: list[object] = []

    @pipex.task
    def innermost(value):
        calls.append(1)
        return unwrap(value)

    @pipex.task
    def upper(value):
        calls.append(2)
        return unwrap(value).upper()

    @pipex.task(target="{path}/named/{name}.pkl")
    def keyed(value, name):
        calls.append(3)
        return unwrap(value["k"])

    first = innermost(nested(DEPTH, "leaf"))
    inner = upper(nested(DEPTH, first))  # an upstream node found 5,000 levels down
    named = keyed({"k": nested(DEPTH, "x")}, name="x")
    assert first.target != innermost(nested(DEPTH - 1, "leaf")).target
    assert first.target == innermost(nested(DEPTH, "leaf")).target
    assert inner.deps == (first,)
    assert pipex.compute(first, inner, named, load=True, progress=False) == ("leaf", "LEAF", "x")
    assert sorted(calls) == [1, 2, 3]
    again = upper(nested(DEPTH, innermost(nested(DEPTH, "leaf"))))
    assert pipex.compute(again, load=True, progress=False) == ("LEAF",)
    assert sorted(calls) == [1, 2, 3]


def test_an_argument_that_contains_itself_is_refused_clearly(workdir):
    @pipex.task
    def f(value):
        return 1

    looped: list[object] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="contains itself"):
        f(looped)


@pipex.task
def innermost(value):
    CALLS.append(1)
    return unwrap(value)


def test_a_deeply_nested_argument_sent_to_processes_is_a_clear_error(workdir, calls):
    node = innermost(nested(DEPTH, "leaf"))
    with pytest.raises(pipex.PipexError, match="nested too deeply for pickle") as info:
        pipex.compute(node, scheduler="processes", progress=False)
    assert node.key in str(info.value)
    assert not node.target.exists()
    assert pipex.compute(node, load=True, progress=False) == ("leaf",)  # threads send nothing
