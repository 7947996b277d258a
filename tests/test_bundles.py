"""Bundles: many independent chains to one scheduler task, every step still its own."""

from __future__ import annotations

import pickle
import tracemalloc
from collections import Counter

import dask
import pytest

import pipex
from pipex.core import fusion
from pipex.core.outcomes import Failure
from pipex.exceptions import SettingError
from tests.test_fusion import chain, recording, steps


@pytest.fixture
def two_threads():
    """dask's schedulers run two tasks at once (what ``auto`` sizes bundles for)."""
    with dask.config.set(num_workers=2):
        yield


def test_independent_chains_run_many_to_a_task_and_every_step_writes_its_target(
    workdir, two_threads
):
    calls: Counter[str] = Counter()
    a, b, c = steps(calls)
    nodes = [chain(a, b, c, n) for n in range(200)]
    graphs: list = []
    results = pipex.compute(nodes, scheduler=recording(graphs), progress=False)
    # auto: 200 chains / (2 threads x 8 tasks) = 12 chains per task: 17 tasks, not 200
    assert len(graphs[0]) == 17
    assert results.summary.ran == 600
    assert calls == {"a": 200, "b": 200, "c": 200}
    for n, node in enumerate(nodes):
        with open(node.target, "rb") as file:
            assert pickle.load(file) == [n, "b", "c"]
        assert node.deps[0].target.load() == [n, "b"]
    records = pipex.history(limit=None)
    assert Counter(r.step for r in records) == {"a": 200, "b": 200, "c": 200}
    assert all(r.status == "ran" and r.duration is not None for r in records)
    assert pipex.compute(nodes, scheduler=recording(graphs)).summary.ran == 0


def test_a_node_reading_the_chains_of_bundles_gets_each_chain_s_own_output(workdir, two_threads):
    a, b, c = steps(Counter())
    total = pipex.task(target="{path}/total.pkl")(lambda parts: [p[0] for p in parts])
    ends = [chain(a, b, c, n) for n in range(100)]
    graphs: list = []
    (got,) = pipex.compute(total(ends), scheduler=recording(graphs), load=True, progress=False)
    assert got == list(range(100))
    assert len(graphs[0]) == 18  # 17 tasks of 6 chains (the last of 4), then the total


def test_a_failing_chain_fails_alone_and_the_chains_it_shares_a_task_with_are_written(
    workdir, two_threads
):
    calls: Counter[str] = Counter()

    @pipex.task(target="{path}/a/{n}.pkl")
    def a(n):
        calls["a"] += 1
        if n == 7:
            raise ValueError("seven")
        return n

    @pipex.task(target="{path}/b/{n}.pkl")
    def b(x, n):
        calls["b"] += 1
        return x + 1

    nodes = [b(a(n), n) for n in range(64)]
    with (
        dask.config.set({"pipex.chains-per-task": 64}),
        pytest.raises(pipex.PipelineError) as info,
    ):
        pipex.compute(nodes, scheduler="sync", progress=False)
    error = info.value
    assert [f.key for f in error.failed] == ["a-pipex-out/a/7.pkl"]
    assert [(n.key, n.causes) for n in error.not_run] == [
        ("b-pipex-out/b/7.pkl", {"a-pipex-out/a/7.pkl"})
    ]
    assert (error.summary.ran, error.summary.failed, error.summary.not_run) == (126, 1, 1)
    assert calls == {"a": 64, "b": 63}
    assert [node.target.exists() for node in nodes] == [n != 7 for n in range(64)]
    assert [nodes[n].target.load() for n in (6, 8, 63)] == [7, 9, 64]


def test_the_setting_fixes_the_chains_per_task(workdir, two_threads):
    a, b, c = steps(Counter())
    graphs: list = []
    with dask.config.set({"pipex.chains-per-task": 25}):
        pipex.compute([chain(a, b, c, n) for n in range(100)], scheduler=recording(graphs))
    with dask.config.set({"pipex.chains-per-task": 1}):
        pipex.compute([chain(a, b, c, n) for n in range(100, 200)], scheduler=recording(graphs))
    assert [len(keys) for keys in graphs] == [4, 100]


def test_a_wrong_chains_per_task_is_refused_before_anything_runs(workdir):
    a, b, c = steps(calls := Counter())
    with (
        dask.config.set({"pipex.chains-per-task": 0}),
        pytest.raises(SettingError, match="chains-per-task"),
    ):
        pipex.compute(chain(a, b, c, 0))
    assert calls == {}


def test_a_task_of_many_chains_keeps_no_step_s_data_after_the_step_that_read_it(workdir):
    size = 4_000_000
    peaks: list[int] = []

    @pipex.task(target="{path}/big/{n}.pkl")
    def big(n):
        return bytes(size)

    @pipex.task(target="{path}/length/{n}.pkl")
    def length(data, n):
        peaks.append(tracemalloc.get_traced_memory()[0])
        return len(data)

    nodes = [length(big(n), n) for n in range(32)]
    tracemalloc.start()
    try:
        with dask.config.set({"pipex.chains-per-task": 32}):
            pipex.compute(nodes, scheduler="sync", progress=False)
    finally:
        tracemalloc.stop()
    assert [node.target.load() for node in nodes] == [size] * 32
    # each big()'s data is handed to its length() and dropped: held one at a time, not 32
    assert max(peaks) - min(peaks) < 4 * size


def test_a_lost_task_of_several_chains_fails_the_first_unwritten_step_of_each(workdir):
    a, b, c = steps(Counter())
    first, second = chain(a, b, c, 0), chain(a, b, c, 1)
    nodes = [first.deps[0].deps[0], first.deps[0], first]
    nodes += [second.deps[0].deps[0], second.deps[0], second]
    died = Failure("x", nodes[0].target, RuntimeError("its worker died"), "text")
    lost = fusion.lost(nodes, died, [True, False, False, False, False, False])
    kinds = [type(outcome).__name__ for outcome in lost]
    assert kinds == ["Target", "Failure", "NotRun", "Failure", "NotRun", "NotRun"]
    assert [lost[1].key, lost[3].key] == [nodes[1].key, nodes[3].key]
    assert lost[2].causes == {nodes[1].key}
    assert lost[5].causes == {nodes[3].key}


def test_chains_of_one_depth_share_tasks_and_a_deeper_chain_waits_for_theirs(workdir):
    from pipex.core.bundles import bundles
    from pipex.core.plan import resolve

    a, b, c = steps(Counter())
    ends = [chain(a, b, c, n) for n in range(40)]
    summary = pipex.task(target="{path}/sum.pkl")(lambda xs: len(xs))(ends)
    plan = resolve([summary])
    tasks = bundles(fusion.chains(plan), workers=1, size=10)
    assert [len(t) for t in tasks] == [30, 30, 30, 30, 1]
    assert tasks[-1] == [summary]
