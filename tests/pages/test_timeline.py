"""The timeline's bars: one per task run up to a few thousand, binned beyond, never more
than a few thousand bars however many task runs."""

from __future__ import annotations

from pipex.pages import timeline
from pipex.pages.durations import spreads
from pipex.pages.facts import TaskRun


def runs(count: int, lanes: int, seconds: float = 0.01) -> list[TaskRun]:
    """``count`` task runs of two steps (taking turns every 50 runs of a lane), back to back
    in ``lanes`` lanes."""
    return [
        TaskRun(
            "even" if (i // (lanes * 50)) % 2 == 0 else "odd",
            f"out/{i}.pkl",
            1000.0 + (i // lanes) * seconds,
            seconds,
            f"host/{i % lanes}",
        )
        for i in range(count)
    ]


def test_a_few_task_runs_are_a_bar_each_in_their_lane():
    bars = timeline.bars(runs(10, 2))
    assert not bars.binned and len(bars) == 10
    assert bars.lanes == ["host/0", "host/1"]
    assert bars.start[0] == 0.0 and abs(bars.end[-1] - 0.05) < 1e-9
    assert set(bars.runs) == {1}


def test_many_task_runs_are_binned_into_a_bounded_number_of_bars():
    for count, lanes in ((timeline.EXACT + 1, 4), (20_000, 4), (100_000, 64)):
        bars = timeline.bars(runs(count, lanes))
        assert bars.binned
        assert len(bars) <= timeline.CELLS, (count, lanes, len(bars))
        assert sum(bars.runs) == count  # every task run counted once
        assert set(bars.lane) == {f"host/{i}" for i in range(lanes)}
        assert all(0 < busy <= 1 for busy in bars.busy)


def test_a_lane_busy_with_one_step_is_one_bar():
    one = [TaskRun("only", f"{i}", 10.0 + i, 1.0, "w/1") for i in range(timeline.EXACT + 1)]
    bars = timeline.bars(one)
    assert bars.binned and len(bars) == 1 and bars.runs == [len(one)]
    assert abs(bars.end[0] - len(one)) < 1e-6 and abs(bars.busy[0] - 1.0) < 1e-6


def test_durations_per_step():
    (odd, even) = spreads(runs(59, 1), ["odd", "even"])
    assert (odd.step, odd.runs, even.runs) == ("odd", 9, 50)
    assert abs(even.median - 0.01) < 1e-12 and abs(even.total - 0.5) < 1e-12
