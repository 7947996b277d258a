"""Mapped steps under PIPEX=prefect+cache: one task run per batch of missing items, named
``<step>[first..last]``; finished items create no task run."""

from __future__ import annotations

import os
import re

import pytest

import pipex
from tests import pipelines
from tests.integration.test_prefect import task_runs
from tests.mapped import logged_first, logged_second

pytestmark = pytest.mark.slow

ITEMS = 30
BATCH = re.compile(r"^(\w+)\[(\d+)\.\.(\d+)\]$")


def two_steps(calls: str) -> pipex.Mapped:
    return logged_second.map(logged_first.map(range(ITEMS), log=calls), log=calls)


def test_a_restart_runs_the_missing_items_as_task_runs_of_batches(
    prefect_cache,
    dask_runner,
    tmp_path,
):
    folder, log = tmp_path / "out", tmp_path / "calls.log"

    @pipex.flow(task_runner=dask_runner)
    def mapped(root: str, calls: str):
        with pipex.context(path=root):
            return pipex.compute(two_steps(calls))

    with pipex.context(path=str(folder)):
        pipex.compute(two_steps(str(log)))
    for i in range(20, ITEMS):
        for step in ("first", "second"):
            (folder / step / f"{i}.pkl").unlink()
    before = len(pipelines.calls(log))

    state = mapped(str(folder), str(log), return_state=True)

    assert state.is_completed(), state
    recorded = pipelines.calls(log)[before:]
    assert sorted((task, int(i)) for task, i, _ in recorded) == sorted(
        (step, i) for step in ("first", "second") for i in range(20, ITEMS)
    )
    assert os.getpid() not in {pid for _, _, pid in recorded}  # on the dask workers
    runs = task_runs(state, expected=1)
    names = [run.name for run in runs]
    assert all(BATCH.match(name) for name in names), names
    assert len(runs) < 2 * (ITEMS - 20)  # batches, not calls
    covered = set()
    for name in names:
        step, first, last = BATCH.match(name).groups()
        assert step in ("logged_first", "logged_second"), name
        covered |= set(range(int(first), int(last) + 1))
    assert covered == set(range(20, ITEMS))
    assert {run.state.name for run in runs} == {"Completed"}

    again = mapped(str(folder), str(log), return_state=True)  # all done: no task run
    assert again.is_completed(), again
    assert task_runs(again, expected=0) == []
