"""The garbage collector's thresholds while graphs are built, while tasks run, and after."""

import gc

import pipex
from pipex.collector import DEFERRED_THRESHOLD, resumed


def test_building_raises_the_young_threshold_and_running_tasks_restores_it():
    before = gc.get_threshold()
    with pipex.context(path="out"):
        young, middle, old = gc.get_threshold()
        assert young == max(before[0], DEFERRED_THRESHOLD)
        assert (middle, old) == before[1:]
        with resumed():
            assert gc.get_threshold() == before
        assert gc.get_threshold() == (young, middle, old)
    assert gc.get_threshold() == before


def test_a_collection_still_runs_while_a_graph_is_built():
    collections = []

    def count(phase, info):
        if phase == "start":
            collections.append(info["generation"])

    @pipex.task(target="{path}/x/{n}.pkl")
    def f(n):
        return n

    gc.callbacks.append(count)
    try:
        with pipex.context(path="out"):
            nodes = [f(n) for n in range(DEFERRED_THRESHOLD)]
    finally:
        gc.callbacks.remove(count)
    assert nodes and collections
