"""pipex.status: exactly what pipex.compute then does, without loading or running anything."""

from __future__ import annotations

import os
from collections import Counter

import pipex
from pipex.steer.status import StepCounts
from pipex.stores.file import FileStore


def test_status_before_a_run_is_what_the_run_does(chains):
    pipeline = chains(6)
    pipeline.compute()
    for path in ("out/score/0.pkl", "out/clean/1.pkl", "out/score/1.pkl", "out/clean/2.pkl"):
        os.remove(path)  # clean/2 alone changes nothing: score/2 exists (Make semantics)
    os.remove("out/load/3.pkl")
    os.remove("out/clean/3.pkl")
    os.remove("out/score/3.pkl")
    pipeline.calls.clear()

    status = pipex.status(pipeline.roots)
    assert pipeline.calls == []  # nothing ran, nothing was loaded

    pipeline.compute()
    ran = [f"out/{step}/{i}.pkl" for step, i in pipeline.calls]
    assert sorted(t.path for t in status.to_run) == sorted(ran)
    assert Counter(step for step, _ in pipeline.calls) == {
        step: counts.to_run for step, counts in status.steps.items() if counts.to_run
    }
    assert sorted(t.path for t in status.done) == [
        "out/clean/0.pkl",
        "out/load/1.pkl",
        "out/score/2.pkl",
        "out/score/4.pkl",
        "out/score/5.pkl",
    ]
    assert status.steps == {  # load 0, 2, 4, 5 and clean 2, 4, 5 lie below done targets
        "load": StepCounts(done=1, to_run=1, not_checked=4),
        "clean": StepCounts(done=1, to_run=2, not_checked=3),
        "score": StepCounts(done=3, to_run=3),
    }
    assert pipex.status(pipeline.roots).to_run == []


def test_to_run_is_in_dependency_order(chains):
    pipeline = chains(2)
    paths = [t.path for t in pipex.status(pipeline.roots).to_run]
    for i in range(2):
        assert paths.index(f"out/load/{i}.pkl") < paths.index(f"out/clean/{i}.pkl")
        assert paths.index(f"out/clean/{i}.pkl") < paths.index(f"out/score/{i}.pkl")


def test_status_loads_no_output(chains, monkeypatch):
    pipeline = chains(3)
    pipeline.compute()
    os.remove("out/score/1.pkl")

    def refuse(*args):
        raise AssertionError("status loaded an output")

    monkeypatch.setattr(FileStore, "open", refuse)
    monkeypatch.setattr(FileStore, "load", refuse)
    status = pipex.status(pipeline.roots)
    assert [t.path for t in status.to_run] == ["out/score/1.pkl"]


def test_str_is_a_table_and_repr_is_short(chains):
    pipeline = chains(3)
    pipeline.compute()
    os.remove("out/score/2.pkl")
    status = pipex.status(pipeline.roots)
    assert str(status).splitlines() == [
        "step   done  to run  failed  not checked",
        "load      0       0       0            3",
        "clean     1       0       0            2",
        "score     2       1       0            0",
        "----------------------------------------",
        "total     3       1       0            5",
    ]
    assert repr(status) == (
        "<pipex.Status 3 done, 1 to run, 0 failed last time, 5 not checked, 3 step(s)>"
    )


def test_status_takes_what_compute_takes(chains):
    pipeline = chains(2)
    status = pipex.status({"a": pipeline.roots[0]}, [pipeline.roots[1]], 42)
    assert len(status.to_run) == 6
    assert status.failed == []  # no run ledger yet: nothing is known to have failed
    assert pipex.status().steps == {}


def test_status_counts_what_lies_below_done_targets_as_not_checked(chains):
    pipeline = chains(6)
    pipeline.compute()
    os.remove("out/score/0.pkl")

    status = pipex.status(pipeline.roots)

    assert status.steps == {
        "load": StepCounts(not_checked=6),
        "clean": StepCounts(done=1, not_checked=5),
        "score": StepCounts(done=5, to_run=1),
    }
    assert status.not_checked == 11
    assert status.total == StepCounts(done=6, to_run=1, failed=0, not_checked=11)
    assert (len(status.done), len(status.to_run)) == (6, 1)  # Targets, as compute finds them
    assert status.total.done == len(status.done) and status.total.to_run == len(status.to_run)
    assert str(status).splitlines()[-1].split() == ["total", "6", "1", "0", "11"]
