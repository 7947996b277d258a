"""Bottom-up resolution, batched existence checks, culling and the flat task graph."""

from __future__ import annotations

import os
import pickle
from collections import Counter

import pytest
from dask.task_spec import Task

import pipex
from pipex.core.graph import to_dask
from pipex.core.plan import resolve
from tests.files import files_under


def chain_tasks(calls: Counter[str]):
    """Three steps ``first -> second -> third``, each counting its calls in ``calls``."""

    @pipex.task(target="{path}/first/{name}.pkl")
    def first(name):
        calls["first", name] += 1
        return {"name": name, "value": 1}

    @pipex.task(target="{path}/second/{x.stem}.pkl")
    def second(x):
        calls["second", x["name"]] += 1
        return {"name": x["name"], "value": x["value"] + 10}

    @pipex.task(target="{path}/third/{x.stem}.pkl")
    def third(x):
        calls["third", x["name"]] += 1
        return {"name": x["name"], "value": x["value"] + 100}

    return first, second, third


def per_task(calls: Counter[str]) -> Counter[str]:
    """Total calls per task name."""
    out: Counter[str] = Counter()
    for (task, _name), n in calls.items():
        out[task] += n
    return out


def test_existing_downstream_target_stops_resolution_its_upstream_is_never_opened(workdir):
    calls: Counter[str] = Counter()
    first, second, _ = chain_tasks(calls)
    node = second(first("a"))
    pipex.compute(node)
    assert per_task(calls) == {"first": 1, "second": 1}

    upstream = node.deps[0].target
    with open(upstream, "wb") as file:  # anything that loaded it would now fail
        file.write(b"\x00garbage, not a pickle\xff")

    node = second(first("a"))
    assert pipex.compute(node) == (node.target,)
    assert pipex.compute(node, load=True) == ({"name": "a", "value": 11},)
    assert per_task(calls) == {"first": 1, "second": 1}


def test_missing_downstream_loads_its_existing_upstream_from_the_file(workdir):
    calls: Counter[str] = Counter()
    first, second, _ = chain_tasks(calls)
    node = second(first("a"))
    pipex.compute(node)
    os.remove(node.target)
    # A different value in the upstream file shows the downstream task read the file.
    with open(node.deps[0].target, "wb") as file:
        pickle.dump({"name": "a", "value": 5}, file)

    (data,) = pipex.compute(second(first("a")), load=True)

    assert data == {"name": "a", "value": 15}
    assert calls == {("first", "a"): 1, ("second", "a"): 2}


def test_deleting_the_last_output_of_a_chain_reruns_exactly_that_task(workdir):
    calls: Counter[str] = Counter()
    first, second, third = chain_tasks(calls)
    names = ["a", "b", "c"]
    pipex.compute([third(second(first(n))) for n in names])
    calls.clear()

    os.remove(third(second(first("b"))).target)
    pipex.compute([third(second(first(n))) for n in names])

    assert calls == {("third", "b"): 1}


def test_deleting_an_output_and_its_dependants_outputs_reruns_exactly_those(workdir):
    calls: Counter[str] = Counter()
    first, second, third = chain_tasks(calls)
    names = ["a", "b", "c"]
    pipex.compute([third(second(first(n))) for n in names])
    calls.clear()

    middle = second(first("b"))
    os.remove(middle.target)
    os.remove(third(middle).target)
    results = pipex.compute([third(second(first(n))) for n in names], load=True)

    assert calls == {("second", "b"): 1, ("third", "b"): 1}
    assert results == ([{"name": n, "value": 111} for n in names],)


def test_an_intermediate_file_below_a_finished_output_is_trusted_not_rebuilt(workdir):
    calls: Counter[str] = Counter()
    first, second, third = chain_tasks(calls)
    node = third(second(first("a")))
    pipex.compute(node)
    calls.clear()

    os.remove(node.deps[0].target)
    pipex.compute(third(second(first("a"))))

    assert calls == {}
    assert not os.path.exists(node.deps[0].target)


class CountingFileStore(pipex.FileStore):
    """A real FileStore that counts how often existence is checked."""

    __slots__ = ("batches",)

    def __init__(self, root):
        super().__init__(root)
        self.batches: list[int] = []

    def exists_many(self, paths):
        self.batches.append(len(paths))
        return super().exists_many(paths)


@pytest.fixture
def fs_calls(monkeypatch, tmp_path):
    """Count folder listings (os.listdir or os.scandir) inside tmp_path, as "listdir", and
    os.path.exists calls on target files."""
    counts: Counter[str] = Counter()
    real_listdir, real_scandir, real_exists = os.listdir, os.scandir, os.path.exists

    def listdir(path="."):
        if str(path).startswith(str(tmp_path)):
            counts["listdir"] += 1
        return real_listdir(path)

    def scandir(path="."):
        if str(path).startswith(str(tmp_path)):
            counts["listdir"] += 1
        return real_scandir(path)

    def exists(path):
        if str(path).startswith(str(tmp_path)) and str(path).endswith(".pkl"):
            counts["exists"] += 1
        return real_exists(path)

    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os.path, "exists", exists)
    return counts


N = 40


def test_existence_is_checked_in_one_batch_and_one_listing_per_level(tmp_path, fs_calls):
    store = CountingFileStore(tmp_path)
    ran: list[str] = []  # list.append is atomic across dask's threads

    @pipex.task(target="{path}/a/{i}.pkl", store=store)
    def a(i):
        ran.append("a")
        return i

    @pipex.task(target="{path}/b/{x.stem}.pkl", store=store)
    def b(x):
        ran.append("b")
        return x + 1

    with pipex.context(path="out"):
        nodes = [b(a(i)) for i in range(N)]
    pipex.compute(nodes)
    assert Counter(ran) == {"a": N, "b": N}

    # Everything done: one batch of N for the requested level, one listing of out/b.
    store.batches.clear()
    fs_calls.clear()
    pipex.compute(nodes)
    assert store.batches == [N]
    assert fs_calls == {"listdir": 1}

    # Downstream missing, upstream done: one batch and one listing per level.
    for node in nodes:
        os.remove(tmp_path / node.target.path)
    store.batches.clear()
    fs_calls.clear()
    pipex.compute(nodes)
    assert store.batches == [N, N]
    # ...and each task that runs looks at its own target once it holds its claim (another
    # runner may have written it since resolution): one stat per task run, none per check.
    assert fs_calls == {"listdir": 2, "exists": N}
    assert Counter(ran) == {"a": N, "b": 2 * N}


def test_results_on_a_subclassed_file_store_equal_the_nodes_targets(tmp_path):
    store = CountingFileStore(tmp_path)

    @pipex.task(target="{path}/{i}.pkl", store=store)
    def a(i):
        return i

    node = a(1)
    (result,) = pipex.compute(node)
    assert result.path == node.target.path
    assert result == node.target


def test_a_shared_upstream_in_a_diamond_runs_once(workdir):
    calls: Counter[str] = Counter()

    @pipex.task(target="{path}/top.pkl")
    def top():
        calls["top"] += 1
        return 1

    @pipex.task(target="{path}/left.pkl")
    def left(x):
        calls["left"] += 1
        return x + 10

    @pipex.task(target="{path}/right.pkl")
    def right(x):
        calls["right"] += 1
        return x + 100

    @pipex.task(target="{path}/bottom.pkl")
    def bottom(x, y):
        calls["bottom"] += 1
        return x + y

    shared = top()
    (result,) = pipex.compute(bottom(left(shared), right(shared)), load=True)
    assert result == 112
    assert calls == {"top": 1, "left": 1, "right": 1, "bottom": 1}

    # Two separately built nodes for the same call are the same node too.
    os.remove(workdir / "pipex-out" / "top.pkl")
    os.remove(workdir / "pipex-out" / "left.pkl")
    os.remove(workdir / "pipex-out" / "right.pkl")
    os.remove(workdir / "pipex-out" / "bottom.pkl")
    pipex.compute(bottom(left(top()), right(top())))
    assert calls == {"top": 2, "left": 2, "right": 2, "bottom": 2}


def test_two_different_calls_rendering_one_target_are_refused_and_nothing_is_written(workdir):
    calls: Counter[str] = Counter()

    @pipex.task(target="{path}/same.pkl")
    def make(i):
        calls["make"] += 1
        return i

    @pipex.task(target="{path}/both.pkl")
    def both(x, y):
        calls["both"] += 1
        return x + y

    with pytest.raises(pipex.TargetCollisionError, match=r"pipex-out/same\.pkl") as info:
        pipex.compute(make(1), make(2))
    assert isinstance(info.value, pipex.TargetError)
    with pytest.raises(pipex.TargetCollisionError, match=r"pipex-out/same\.pkl"):
        pipex.compute(both(make(1), make(2)))

    assert calls == {}
    assert files_under(workdir) == []


def test_nested_calls_of_one_task_rendering_one_target_are_a_collision(workdir):
    calls: Counter[str] = Counter()
    first, second, _ = chain_tasks(calls)
    # {x.stem} is "a" at every level: three different calls, one target.
    node = second(second(second(first("a"))))

    with pytest.raises(pipex.TargetCollisionError, match=r"pipex-out/second/a\.pkl"):
        pipex.compute(node)
    assert calls == {}
    assert files_under(workdir) == []


def test_the_same_call_made_twice_is_one_node_and_runs_once(workdir):
    calls: Counter[str] = Counter()

    @pipex.task
    def make(i, scale=1):
        calls["make", i] += 1
        return i * scale

    @pipex.task
    def add(x, y):
        calls["add"] += 1
        return x + y

    results = pipex.compute(make(3), make(3), make(i=3, scale=1), add(make(3), make(3)), load=True)

    assert results == (3, 3, 3, 6)
    assert calls == {("make", 3): 1, "add": 1}
    assert len(files_under(workdir)) == 2


def test_resolve_reports_what_is_done_and_what_is_missing(workdir):
    calls: Counter[str] = Counter()
    first, second, third = chain_tasks(calls)
    pipex.compute(second(first("a")))
    calls.clear()

    node = third(second(first("a")))
    plan = resolve([node])

    assert [n.key for n in plan.missing] == [node.key]
    middle = node.deps[0]
    assert plan.done == {middle.key: middle.target}
    assert calls == {}  # resolving runs nothing

    fresh = third(second(first("b")))
    plan = resolve([fresh])
    assert [n.task.name for n in plan.missing] == ["third", "second", "first"]
    assert plan.done == {}

    everything = resolve([node, fresh], check=False)
    assert len(everything.missing) == 6
    assert everything.done == {}


def test_the_graph_is_flat_task_spec_tasks_keyed_by_function_and_target(workdir):
    calls: Counter[str] = Counter()
    first, second, third = chain_tasks(calls)

    @pipex.task(target="{path}/renamed/{x.stem}.pkl", name="nicer")
    def ugly_function_name(x):
        return x

    pipex.compute(first("a"))
    node = ugly_function_name(third(second(first("a"))))
    dsk = to_dask(resolve([node]), keep_going=True)

    assert set(dsk) == {
        ("nicer", "pipex-out/renamed/a.pkl"),
        ("third", "pipex-out/third/a.pkl"),
        ("second", "pipex-out/second/a.pkl"),
    }
    for key, value in dsk.items():
        assert type(value) is Task
        assert value.key == key
        assert value.dependencies <= set(dsk)  # flat: only references to other keys
    assert dsk[("nicer", "pipex-out/renamed/a.pkl")].dependencies == {
        ("third", "pipex-out/third/a.pkl")
    }
    assert dsk[("second", "pipex-out/second/a.pkl")].dependencies == set()
    # The done upstream is embedded as a constant Target, not a key.
    assert first("a").target in dsk[("second", "pipex-out/second/a.pkl")].args


def test_each_run_has_its_own_task_keys_readable_and_grouped_by_function(workdir):
    """A distributed scheduler may still hold the last run's keys: runs must not share them."""
    from dask.utils import key_split

    calls: Counter[str] = Counter()
    first, second, _ = chain_tasks(calls)
    plan = resolve([second(first("a"))])
    one = to_dask(plan, keep_going=True, run_id="0badc0de")
    two = to_dask(plan, keep_going=True, run_id="feedbeef")

    top = ("second", "pipex-out/second/a.pkl", "0badc0de")
    assert set(one) == {top, ("first", "pipex-out/first/a.pkl", "0badc0de")}
    assert set(one).isdisjoint(two)
    assert one[top].dependencies == {("first", "pipex-out/first/a.pkl", "0badc0de")}
    assert {key_split(k) for k in one} == {"first", "second"}
    kept = to_dask(
        plan,
        keep_going=True,
        run_id="0badc0de",
        stable=frozenset({("second", "pipex-out/second/a.pkl")}),
    )
    assert ("second", "pipex-out/second/a.pkl") in kept
