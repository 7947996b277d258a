"""A run's batches run ahead (:mod:`pipex.executors.ahead`): the next batch starts while one
runs, unless it reads an outcome of a batch still running; outcomes come back in order.

The batches are real plans of real pipex nodes (``Plan.batches``); ``execute`` here records
when each batch starts and ends, and gives each node its target as its outcome.
"""

from __future__ import annotations

import threading

import pytest

import pipex
from pipex.core.plan import Plan, resolve
from pipex.executors.ahead import ahead
from tests import pipelines


class Recorder:
    """Runs batches: records their start and end, holds ``hold`` until ``until`` starts."""

    def __init__(self, hold: int | None = None, until: int | None = None) -> None:
        self.events: list[str] = []
        self.lock = threading.Lock()
        self.started: dict[int, threading.Event] = {}
        self.hold, self.until = hold, until
        self.count = 0
        self.threads: set[int] = set()

    def __call__(self, plan: Plan) -> dict[str, object]:
        with self.lock:
            n = self.count
            self.count += 1
            self.events.append(f"start {n}")
            self.started.setdefault(n, threading.Event()).set()
            self.threads.add(threading.get_ident())
        for node in plan.missing:  # what an input of another batch must be by now
            for dep in node.deps:
                assert dep.key in plan.done or dep in plan.missing, dep.key
        if n == self.hold and self.until is not None:
            seen = self.started.setdefault(self.until, threading.Event()).wait(30)
            self.events.append(f"{n} saw {self.until}" if seen else f"{n} missed {self.until}")
        with self.lock:
            self.events.append(f"end {n}")
        return {node.key: node.target for node in plan.missing}


def chains_and_total(folder: str, log: str, names: list[str], total: bool) -> list[pipex.Node]:
    with pipex.context(path=folder):
        nodes = pipelines.chains(names, log)
        return [*nodes, pipelines.total(nodes, "all", log)] if total else nodes


def run(nodes: list[pipex.Node], size: int, execute: Recorder) -> list[dict[str, object]]:
    plan = resolve(nodes)
    outcomes: dict[str, object] = {}
    given = []
    for finished in ahead(plan.batches(size, outcomes), execute):
        given.append(finished)
        outcomes.update(finished)
    return given


def test_the_next_batch_starts_while_one_runs_and_outcomes_come_back_in_order(workdir):
    nodes = chains_and_total(str(workdir), str(workdir / "log"), ["a", "b", "c"], total=False)
    execute = Recorder(hold=0, until=1)

    given = run(nodes, 2, execute)  # a chain per batch

    assert "0 saw 1" in execute.events  # batch 1 started while batch 0 ran
    assert execute.events.index("start 2") > execute.events.index("end 0")  # two at most
    assert [sorted(k.split("/")[-1] for k in batch) for batch in given] == [
        ["a.pkl", "a.pkl"],
        ["b.pkl", "b.pkl"],
        ["c.pkl", "c.pkl"],
    ]


def test_a_batch_that_reads_a_running_batch_s_outcome_starts_after_it(workdir):
    nodes = chains_and_total(str(workdir), str(workdir / "log"), ["a", "b", "c"], total=True)
    execute = Recorder()

    given = run(nodes, 2, execute)  # a chain per batch, then the total over the three

    assert len(given) == 4
    assert execute.events.index("start 3") > execute.events.index("end 2")


def test_one_batch_runs_in_the_caller_s_thread(workdir):
    nodes = chains_and_total(str(workdir), str(workdir / "log"), ["a"], total=False)
    execute = Recorder()

    (given,) = run(nodes, 10, execute)

    assert len(given) == 2
    assert execute.threads == {threading.get_ident()}


def test_a_batch_that_raises_is_raised_once_the_others_have_ended(workdir):
    nodes = chains_and_total(str(workdir), str(workdir / "log"), ["a", "b", "c"], total=False)
    execute = Recorder()

    def failing(plan: Plan) -> dict[str, object]:
        result = execute(plan)
        if any(node.key.endswith("a.pkl") for node in plan.missing):
            raise RuntimeError("batch 0 failed")
        return result

    with pytest.raises(RuntimeError, match="batch 0 failed"):
        run(nodes, 2, failing)  # type: ignore[arg-type]

    assert execute.events.count("start 1") == execute.events.count("end 1") == 1
    assert "start 2" not in execute.events
