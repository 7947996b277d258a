"""A plain task that reads the items of a mapped step (``total(m)``, ``m[i]`` below a node):
the items are resolved with the rest of their step and run in its batches, not as one
scheduler task each; the plain node runs after them."""

from __future__ import annotations

import os

import pytest
from dask.callbacks import Callback

import pipex
from tests.mapped import Steps, written_by_hand


class _Tasks(Callback):
    """Counts the tasks dask's local scheduler runs."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[object] = []

    def _pretask(self, key: object, dsk: object, state: object) -> None:
        self.keys.append(key)


def _total(seen: list[list[int]]) -> pipex.TaskFunction:
    @pipex.task(target="out/total.pkl")
    def total(values: list[int]) -> int:
        seen.append(values)
        return sum(values)

    return total


def test_the_missing_items_a_plain_task_reads_run_in_batches_not_one_task_each(workdir):
    steps = Steps()
    seen: list[list[int]] = []
    _, second, _ = steps.build(300)
    tasks = _Tasks()

    with tasks:
        (result,) = pipex.compute(_total(seen)(second), load=True, progress=False)

    assert result == sum(10 * i for i in range(300))
    assert steps.counts() == {"a": 300, "b": 300}
    assert len(tasks.keys) == 1  # the total alone; the 600 item calls ran in batches
    assert seen == [[10 * i for i in range(300)]]


def test_only_the_missing_items_run_and_nothing_below_a_done_item_is_looked_at(workdir):
    steps = Steps()
    seen: list[list[int]] = []
    written_by_hand("b", range(0, 200), lambda i: 10 * i)  # items 0..199 done, no `a` files
    _, second, _ = steps.build(250)

    (result,) = pipex.compute(_total(seen)(second), load=True, progress=False)

    assert result == sum(10 * i for i in range(250))
    assert steps.ran("a") == list(range(200, 250))
    assert steps.ran("b") == list(range(200, 250))
    assert not os.path.exists("out/a/0.pkl")  # below a done item: never checked nor run


def test_a_failed_item_fails_itself_and_the_plain_task_does_not_run(workdir):
    steps = Steps(bad=frozenset({7}))
    seen: list[list[int]] = []
    _, second, _ = steps.build(20)

    with pytest.raises(pipex.PipelineError) as caught:
        pipex.compute(_total(seen)(second), progress=False)

    assert {f.target.path for f in caught.value.failed} == {"out/a/7.pkl"}
    assert {n.target.path for n in caught.value.not_run} >= {"out/b/7.pkl", "out/total.pkl"}
    assert seen == []
    assert sorted(os.listdir("out/b")) == sorted(f"{i}.pkl" for i in range(20) if i != 7)


def test_a_node_of_an_item_below_a_plain_node_runs_with_its_step(workdir):
    steps = Steps()
    first, second, _ = steps.build(40)
    seen: list[list[int]] = []
    tasks = _Tasks()

    @pipex.task(target="out/pair.pkl")
    def pair(x: int, y: int) -> list[int]:
        seen.append([x, y])
        return [x, y]

    with tasks:
        (result,) = pipex.compute(pair(second[3], first[5]), load=True, progress=False)

    assert result == [30, 5]
    assert len(tasks.keys) == 1
    assert steps.ran("a") == [3, 5]
    assert steps.ran("b") == [3]


def test_a_mapped_step_that_reads_a_gathering_node_still_runs_after_it(workdir):
    steps = Steps()
    seen: list[list[int]] = []
    first = steps.a.map(range(5))
    total = _total(seen)(first)

    @pipex.task(target="out/scaled/{x.stem}.pkl")
    def scaled(x: int, by: int) -> int:
        return x * by

    (values,) = pipex.compute(scaled.map(first, by=total), load=True, progress=False)

    assert values == [i * 10 for i in range(5)]
    assert steps.counts() == {"a": 5}


def test_skip_failed_leaves_the_plain_task_of_an_item_that_failed_last_time(workdir):
    steps = Steps(bad=frozenset({2}))
    seen: list[list[int]] = []
    first = steps.a.map(range(6))
    with pytest.raises(pipex.PipelineError):
        pipex.compute(_total(seen)(first), progress=False)
    steps.calls.clear()

    results = pipex.compute(_total(seen)(first), progress=False, skip_failed=True)

    assert steps.calls == []
    assert seen == []
    assert results.summary.skipped == 2  # the item and the total
