"""``task.map``: a pipex.Mapped for many calls, its shape, and what computing it returns."""

from __future__ import annotations

import os
import pickle
import threading
import tracemalloc

import dask
import numpy as np
import pytest

import pipex
from tests.files import files_under
from tests.mapped import Steps, live, written_by_hand


@pipex.task(target="out/pair/{i}-{name}.pkl")
def pair(i: int, name: str, sep: str = "-") -> str:
    return f"{i}{sep}{name}"


@pipex.task(target="out/label/{x.stem}-{name}.pkl")
def label(x: int, name: str) -> str:
    return f"{x}-{name}"


# --- building a Mapped -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "items",
    [[0, 1, 2, 3], (0, 1, 2, 3), range(4), np.arange(4)],
    ids=["list", "tuple", "range", "numpy"],
)
def test_map_calls_the_task_once_per_item_of_any_sized_iterable(workdir, items):
    steps = Steps()
    m = steps.a.map(items)

    assert isinstance(m, pipex.Mapped)
    assert len(m) == 4
    assert steps.calls == []  # building runs nothing
    (targets,) = pipex.compute(m, progress=False)

    assert sorted(steps.calls) == [("a", i) for i in range(4)]
    assert [t.path for t in targets] == [f"out/a/{i}.pkl" for i in range(4)]
    assert [t.load() for t in targets] == [0, 1, 2, 3]


def test_positional_iterables_are_zipped_elementwise(workdir):
    m = pair.map(range(3), ["x", "y", "z"])

    assert pipex.compute(m, load=True, progress=False) == (["0-x", "1-y", "2-z"],)
    assert files_under(workdir) == ["out/pair/0-x.pkl", "out/pair/1-y.pkl", "out/pair/2-z.pkl"]


def test_a_mapped_is_an_iterable_of_another_map(workdir):
    steps = Steps()
    first = steps.a.map(range(3))
    second = steps.b.map(first)

    assert len(second) == 3
    assert pipex.compute(second, load=True, progress=False) == ([0, 10, 20],)
    assert [t.path for t in pipex.compute(second, progress=False)[0]] == [
        "out/b/0.pkl",
        "out/b/1.pkl",
        "out/b/2.pkl",
    ]


def test_a_mapped_zipped_with_a_plain_list(workdir):
    steps = Steps()
    first = steps.a.map(range(3))
    named = label.map(first, ["x", "y", "z"])

    assert pipex.compute(named, load=True, progress=False) == (["0-x", "1-y", "2-z"],)
    assert files_under(workdir / "out" / "label") == ["0-x.pkl", "1-y.pkl", "2-z.pkl"]


@pytest.mark.parametrize(
    ("iterables", "lengths"),
    [
        ((range(3), ["a", "b", "c", "d"]), ("3", "4")),
        ((["a"] * 5, range(2)), ("5", "2")),
    ],
)
def test_unequal_lengths_are_a_value_error_naming_both_before_anything_runs(
    workdir, iterables, lengths
):
    with pytest.raises(ValueError) as info:
        pair.map(*iterables)
    message = str(info.value)
    assert all(n in message for n in lengths), message
    assert files_under(workdir) == []


def test_a_mapped_of_another_length_is_refused_too(workdir):
    steps = Steps()
    first = steps.a.map(range(5))

    with pytest.raises(ValueError, match=r"(?s)(5.*4|4.*5)"):
        label.map(first, ["w", "x", "y", "z"])
    assert steps.calls == []


def test_keywords_are_the_same_for_every_call(workdir):
    m = pair.map(range(3), ["x", "y", "z"], sep="+")

    assert pipex.compute(m, load=True, progress=False) == (["0+x", "1+y", "2+z"],)


def test_a_node_keyword_is_computed_once_for_every_call(workdir):
    calls: list[str] = []

    @pipex.task(target="out/factor.pkl")
    def factor() -> int:
        calls.append("factor")
        return 3

    @pipex.task(target="out/scaled/{i}.pkl")
    def scaled(i: int, by: int) -> int:
        calls.append("scaled")
        return i * by

    m = scaled.map(range(50), by=factor())
    assert pipex.compute(m, load=True, progress=False) == ([3 * i for i in range(50)],)
    assert calls.count("factor") == 1
    assert calls.count("scaled") == 50


def test_map_with_no_iterable_is_a_type_error():
    with pytest.raises(TypeError):
        pair.map()


# --- len, indexing, iterating ------------------------------------------------------------------


def test_an_item_is_a_node_usable_wherever_a_node_is(workdir):
    steps = Steps()
    first, second, third = steps.build(5)

    node = third[3]
    assert isinstance(node, pipex.Node)
    assert node.target.path == "out/c/3.pkl"
    assert second[3].target.path == "out/b/3.pkl"

    # as an argument of a plain call: only that item's chain runs
    report = label(node, "r")
    assert report.target.path == "out/label/3-r.pkl"
    assert pipex.compute(report, load=True, progress=False) == ("31-r",)
    assert sorted(steps.calls) == [("a", 3), ("b", 3), ("c", 3)]
    # and computed on its own
    assert pipex.compute(first[1], progress=False) == (first[1].target,)
    assert steps.ran("a") == [1, 3]


def test_an_index_out_of_range_is_an_index_error(workdir):
    m = Steps().a.map(range(3))
    with pytest.raises(IndexError):
        m[3]


def test_iterating_yields_the_nodes_in_item_order(workdir):
    m = Steps().a.map(range(4))

    nodes = list(m)

    assert len(nodes) == 4
    assert all(isinstance(n, pipex.Node) for n in nodes)
    assert [n.target.path for n in nodes] == [f"out/a/{i}.pkl" for i in range(4)]


def test_building_makes_no_node_per_item(workdir):
    steps = Steps()
    before = live(pipex.Node)

    maps = steps.build(20_000)

    assert live(pipex.Node) - before < 100
    assert len(maps[-1]) == 20_000


def test_building_three_chained_maps_allocates_little(workdir):
    # The figure: < 100 MB for three chained maps of 1,000,000 items; here 200,000
    # items (a fifth), so a fifth of the bound.
    steps = Steps()
    items = range(200_000)
    tracemalloc.start()
    try:
        first = steps.a.map(items)
        second = steps.b.map(first)
        third = steps.c.map(second)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(third) == 200_000
    assert peak < 20_000_000, f"{peak / 1e6:.1f} MB"


# --- computing ---------------------------------------------------------------------------------


def test_compute_returns_a_sequence_of_targets_in_item_order(workdir):
    steps = Steps()
    _, second, _ = steps.build(6)

    results = pipex.compute(second, progress=False)

    assert isinstance(results, tuple) and len(results) == 1
    (targets,) = results
    assert len(targets) == 6
    assert type(targets[4]) is pipex.Target
    assert targets[4] == second[4].target
    assert targets[-1] == second[5].target
    assert [t.path for t in targets] == [f"out/b/{i}.pkl" for i in range(6)]
    assert [t.load() for t in targets] == [10 * i for i in range(6)]


def test_the_targets_hold_no_object_per_item(workdir):
    steps = Steps()
    _, second, _ = steps.build(2_000)
    written_by_hand("b", range(2_000), lambda i: 10 * i)
    before = live(pipex.Target)

    (targets,) = pipex.compute(second, progress=False)  # all done

    assert steps.calls == []
    assert live(pipex.Target) - before < 100
    assert len(targets) == 2_000
    assert targets[1_234].path == "out/b/1234.pkl"
    assert targets[1_234].load() == 12_340


def test_load_true_returns_the_data_in_item_order(workdir):
    steps = Steps()
    _, second, third = steps.build(8)
    pipex.compute(second[5], progress=False)  # one item done already: loaded, not run

    (data,) = pipex.compute(third, load=True, progress=False)

    assert list(data) == [10 * i + 1 for i in range(8)]
    assert steps.ran("b") == list(range(8))  # once each


def test_a_mapped_among_other_things_to_compute(workdir):
    steps = Steps()
    first, _, third = steps.build(3)
    single = pair(7, "q")

    results = pipex.compute({"all": third}, single, [first], progress=False)

    assert [t.path for t in results[0]["all"]] == [f"out/c/{i}.pkl" for i in range(3)]
    assert results[1] == single.target
    assert [t.path for t in results[2][0]] == [f"out/a/{i}.pkl" for i in range(3)]


def test_a_plain_task_given_a_mapped_receives_the_data_in_item_order(workdir):
    steps = Steps()
    received: list[object] = []

    @pipex.task(target="out/total.pkl")
    def total(values: list[int]) -> int:
        received.append(values)
        return sum(values)

    _, second, _ = steps.build(10)
    assert pipex.compute(total(second), load=True, progress=False) == (450,)
    assert received == [[10 * i for i in range(10)]]
    assert type(received[0]) is list


def test_a_parameter_annotated_list_of_targets_receives_the_targets(workdir):
    steps = Steps()
    received: list[object] = []

    @pipex.task(target="out/index.pkl")
    def index(found: list[pipex.Target]) -> list[str]:
        received.append(found)
        return [t.path for t in found]

    first = steps.a.map(range(4))
    assert pipex.compute(index(first), load=True, progress=False) == (
        [f"out/a/{i}.pkl" for i in range(4)],
    )
    (found,) = received
    assert all(type(t) is pipex.Target for t in found)
    assert [t.load() for t in found] == [0, 1, 2, 3]


def test_dask_compute_prunes_as_pipex_compute_does(workdir):
    steps = Steps()
    _, _, third = steps.build(6)
    pipex.compute(third, progress=False)
    assert steps.counts() == {"a": 6, "b": 6, "c": 6}
    steps.calls.clear()
    os.remove("out/c/2.pkl")

    (targets,) = dask.compute(third)

    assert steps.calls == [("c", 2)]  # neither the done items nor the upstream of item 2
    assert [t.path for t in targets] == [f"out/c/{i}.pkl" for i in range(6)]
    assert targets[2].load() == 21

    steps.calls.clear()
    dask.compute(third)
    assert steps.calls == []


def test_the_progress_bar_counts_targets(workdir, capsys):
    steps = Steps()
    _, second, _ = steps.build(5)
    pipex.compute([second[0], second[1]], progress=False)
    capsys.readouterr()

    pipex.compute(second, progress=True)

    err = capsys.readouterr().err
    assert "2 already done" in err
    assert "6/6" in err  # the three missing items' two steps each
    assert "pipex: 5 requested, 2 already done, ran 6" in err


# --- batches -----------------------------------------------------------------------------------


def test_items_run_in_batches_of_the_set_size_each_chain_in_one_batch(workdir):
    ran: dict[tuple[str, int], int] = {}

    @pipex.task(target="out/first/{i}.pkl")
    def first(i: int) -> int:
        ran["first", i] = threading.get_ident()
        return i

    @pipex.task(target="out/second/{x.stem}.pkl")
    def second(x: int) -> int:
        ran["second", x] = threading.get_ident()
        return x

    with dask.config.set({"pipex.map.batch-size": 10}):
        pipex.compute(second.map(first.map(range(100))), scheduler="threads", progress=False)

    assert len(ran) == 200
    for i in range(100):  # a batch runs an item's missing steps one after the other
        assert ran["first", i] == ran["second", i]
    for start in range(0, 100, 10):  # ten items per batch, each batch on one thread
        assert len({ran["first", i] for i in range(start, start + 10)}) == 1


def test_a_batch_size_that_is_not_a_number_is_refused(workdir):
    steps = Steps()
    with (
        dask.config.set({"pipex.map.batch-size": "many"}),
        pytest.raises(ValueError, match="batch-size"),
    ):
        pipex.compute(steps.a.map(range(3)), progress=False)
    assert steps.calls == []


def test_an_item_found_written_when_it_came_to_run_is_counted_found_not_ran(workdir):
    # another runner wrote item 3's second step while this one ran its first: the batch finds
    # it written when it claims it, and neither calls nor counts it as ran
    called = []

    @pipex.task(target="out/one/{i}.pkl")
    def one(i: int) -> int:
        if i == 3:
            with open("out/two/3.pkl", "wb") as file:
                pickle.dump(-1, file)
        return i

    @pipex.task(target="out/two/{x.stem}.pkl")
    def two(x: int) -> int:
        called.append(x)
        return x + 1

    os.makedirs("out/two")
    results = pipex.compute(two.map(one.map(range(6))), scheduler="sync")

    assert sorted(called) == [0, 1, 2, 4, 5]
    assert (results.summary.ran, results.summary.found) == (11, 1)
    assert pipex.compute(two.map(one.map(range(6))), load=True)[0] == [1, 2, 3, -1, 5, 6]
