"""Fused chains: one scheduler task per linear chain of missing nodes, every step still seen."""

from __future__ import annotations

import pickle
from collections import Counter

import dask
import pytest

import pipex
from pipex import serializers
from pipex.core import fusion
from pipex.core.plan import resolve


def steps(calls: Counter[str], suffix: str = "pkl", fail: str | None = None):
    """``a -> b -> c``: each counts its calls; the step named ``fail`` raises."""

    def make(name: str, first: bool):
        def first_step(n):
            calls[name] += 1
            if name == fail:
                raise ValueError(f"{name} broke")
            return [n]

        def later(x, n):
            calls[name] += 1
            if name == fail:
                raise ValueError(f"{name} broke")
            return [*x, name]

        target = f"{{path}}/{name}/{{n}}.{suffix}"
        return pipex.task(target=target, name=name)(first_step if first else later)

    return make("a", True), make("b", False), make("c", False)


def chain(a, b, c, n: int):
    return c(b(a(n), n), n)


@pytest.fixture
def loads(monkeypatch):
    """Counts every load of a .pkl target (the serializer's, whoever calls it)."""
    counted = Counter()
    original = serializers.Pickle.load

    def load(self, file):
        counted["pkl"] += 1
        return original(self, file)

    monkeypatch.setattr(serializers.Pickle, "load", load)
    return counted


def recording(graphs: list):
    def scheduler(dsk, keys, **kwargs):
        graphs.append(list(keys))
        return dask.get(dsk, keys, **kwargs)

    return scheduler


def test_a_chain_is_one_task_and_every_step_writes_its_target(workdir):
    calls: Counter[str] = Counter()
    a, b, c = steps(calls)
    nodes = [chain(a, b, c, n) for n in range(3)]
    graphs: list = []
    results = pipex.compute(nodes, scheduler=recording(graphs), progress=False)
    assert [len(keys) for keys in graphs] == [3]  # three chains, not nine tasks
    assert results.summary.ran == 9
    assert calls == {"a": 3, "b": 3, "c": 3}
    for n, node in enumerate(nodes):
        for step, expected in ((node, [n, "b", "c"]), (node.deps[0], [n, "b"])):
            with open(step.target, "rb") as file:
                assert pickle.load(file) == expected
        assert node.deps[0].deps[0].target.load() == [n]

    assert pipex.compute(nodes, scheduler=recording(graphs)).summary.ran == 0
    assert calls == {"a": 3, "b": 3, "c": 3}
    assert len(graphs) == 1


def test_a_fused_task_is_named_after_every_step_it_holds(workdir):
    from dask.utils import key_split

    a, b, c = steps(Counter())
    fused = chain(a, b, c, 0)
    alone = b(a(1), 1)  # requested together with its own user: no fusion above a(1)
    graphs: list = []
    pipex.compute([fused, alone, c(alone, 1)], scheduler=recording(graphs), progress=False)

    keys = sorted(graphs[0])
    assert [key[:2] for key in keys] == [
        ("a+b", alone.target.path),  # named after both steps, keyed by the last's target
        ("a+b+c", fused.target.path),
        ("c", "pipex-out/c/1.pkl"),
    ]
    assert [key_split(key) for key in keys] == ["a+b", "a+b+c", "c"]  # the dashboard's names


def test_a_fused_step_hands_its_data_to_the_next_without_a_load(workdir, loads):
    a, b, c = steps(Counter())
    pipex.compute([chain(a, b, c, n) for n in range(4)])
    assert loads["pkl"] == 0

    with dask.config.set({"pipex.fuse": False}):  # the same chains, not fused
        pipex.compute([chain(a, b, c, n) for n in range(4, 8)])
    assert loads["pkl"] == 8  # b and c load their input


def test_a_json_step_is_loaded_all_the_same_so_the_next_sees_what_a_load_gives(workdir):
    seen = []

    @pipex.task(target="{path}/pair/{n}.json")
    def pair(n):
        return (n, n)  # JSON gives back a list

    @pipex.task(target="{path}/kind/{n}.pkl")
    def kind(x, n):
        seen.append(type(x))
        return type(x).__name__

    assert pipex.compute(kind(pair(1), 1), load=True) == ("list",)
    assert seen == [list]


def test_a_failure_in_the_middle_is_that_step_and_the_steps_after_it_are_not_run(workdir):
    calls: Counter[str] = Counter()
    a, b, c = steps(calls, fail="b")
    nodes = [chain(a, b, c, n) for n in range(2)]
    graphs: list = []
    with pytest.raises(pipex.PipelineError) as info:
        pipex.compute(nodes, scheduler=recording(graphs), progress=False)
    error = info.value
    assert len(graphs[0]) == 2
    assert sorted(f.key for f in error.failed) == [f"b-pipex-out/b/{n}.pkl" for n in range(2)]
    assert sorted(f.target.path for f in error.failed) == [f"pipex-out/b/{n}.pkl" for n in (0, 1)]
    assert sorted(n.key for n in error.not_run) == [f"c-pipex-out/c/{n}.pkl" for n in range(2)]
    assert all(n.causes == {n.key.replace("c", "b")} for n in error.not_run)
    assert "b broke" in str(error.exceptions[0])
    assert (error.summary.ran, error.summary.failed, error.summary.not_run) == (2, 2, 2)
    assert calls == {"a": 2, "b": 2}
    assert [node.deps[0].deps[0].target.exists() for node in nodes] == [True, True]
    assert not any(node.target.exists() or node.deps[0].target.exists() for node in nodes)

    by_status = Counter((r.step, r.status) for r in pipex.history())
    assert by_status == {("a", "ran"): 2, ("b", "failed"): 2, ("c", "not run"): 2}


def test_every_step_of_a_chain_reaches_the_ledger_with_its_own_timing(workdir):
    a, b, c = steps(Counter())
    pipex.compute([chain(a, b, c, n) for n in range(2)])
    records = pipex.history()
    assert Counter(r.step for r in records) == {"a": 2, "b": 2, "c": 2}
    assert all(r.status == "ran" and r.duration is not None for r in records)
    by_chain = sorted((r.path.split("/")[-1], r.started, r.step) for r in records)
    assert [step for _, _, step in by_chain] == ["a", "b", "c", "a", "b", "c"]


def test_progress_counts_every_step(workdir, monkeypatch):
    from pipex.running import progress

    counted = []
    monkeypatch.setattr(
        progress.Progress, "record", lambda self, key, outcome: counted.append(key)
    )
    a, b, c = steps(Counter())
    pipex.compute([chain(a, b, c, n) for n in range(3)], progress=False)
    assert sorted(k.split("-")[0] for k in counted) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3


def test_a_shared_or_requested_step_ends_a_chain(workdir):
    calls: Counter[str] = Counter()
    a, b, c = steps(calls)
    first = a(0)
    two_users = [c(b(first, 0), 0), b(first, 1)]  # a(0) has two users: not fused into either
    requested = b(a(1), 2)  # ends its chain: it is requested, whoever else uses it
    plan = resolve([*two_users, requested, c(requested, 2)])
    shapes = sorted([node.task.name for node in group] for group in fusion.chains(plan))
    assert shapes == [["a"], ["a", "b"], ["b"], ["b", "c"], ["c"]]

    targets = pipex.compute(two_users, requested, progress=False)
    assert targets[1].load() == [1, "b"]
    assert sum(calls.values()) == 6


def test_a_target_parameter_gets_the_target_written_by_the_step_before(workdir, loads):
    seen = []

    @pipex.task(target="{path}/one/{n}.pkl")
    def one(n):
        return n

    @pipex.task(target="{path}/two/{n}.pkl")
    def two(x: pipex.Target, n):
        seen.append((type(x), x.exists()))
        return x.load() + 1

    assert pipex.compute(two(one(5), 5), load=True) == (6,)
    assert seen == [(pipex.Target, True)]
    assert loads["pkl"] == 2  # two loads its input itself; compute loads the result


def test_without_keep_going_nothing_is_fused_and_the_first_failure_is_raised(workdir):
    a, b, c = steps(Counter(), fail="b")
    graphs: list = []
    with pytest.raises(ValueError, match="b broke"):
        pipex.compute(chain(a, b, c, 0), scheduler=recording(graphs), keep_going=False)
    assert len(graphs[0]) == 3


def test_fusion_can_be_turned_off(workdir):
    a, b, c = steps(Counter())
    graphs: list = []
    with dask.config.set({"pipex.fuse": False}):
        pipex.compute([chain(a, b, c, n) for n in range(2)], scheduler=recording(graphs))
    assert len(graphs[0]) == 6
