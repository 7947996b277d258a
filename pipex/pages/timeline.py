"""The timeline of a run: one lane per worker thread, one bar per task run or per time bin.

Up to :data:`EXACT` task runs, each is a bar from its start to its end in its worker's lane.
Beyond that the time of the run is cut into bins (fewer the more lanes there are, at most
:data:`CELLS` lane-bins in all): each lane's bin shows the step that kept it busy longest
there, as dark as the share of the bin it was busy; neighbouring bins of one step in one
lane are one bar. So the page holds at most a few thousand bars however many tasks ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pipex.pages.facts import TaskRun

#: The most task runs drawn one bar each, and the most lane-bins of a binned timeline.
EXACT, CELLS = 3000, 12000
#: The fewest and the most bins per lane.
BINS = (40, 400)


@dataclass
class Bars:
    """Bars of a timeline, as columns: lane, start and end (seconds from the run's first
    start), step, how many task runs each stands for, and how busy (1: all the time)."""

    lanes: list[str]
    binned: bool = False
    lane: list[str] = field(default_factory=list)
    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    step: list[str] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)

    def add(self, lane: str, start: float, end: float, step: str, runs: int, busy: float) -> None:
        self.lane.append(lane)
        self.start.append(start)
        self.end.append(end)
        self.step.append(step)
        self.runs.append(runs)
        self.busy.append(busy)

    def __len__(self) -> int:
        return len(self.lane)

    def columns(self) -> dict[str, list[object]]:
        """The bars as the columns of a chart's data source (rounded: a smaller page)."""
        return {
            "lane": list(self.lane),
            "start": [round(x, 4) for x in self.start],
            "end": [round(x, 4) for x in self.end],
            "step": list(self.step),
            "runs": list(self.runs),
            "busy": [round(x, 3) for x in self.busy],
        }


def bars(timed: Sequence[TaskRun]) -> Bars:
    """The bars of the timeline of ``timed`` task runs (exact or binned, by their number)."""
    lanes = sorted({t.worker for t in timed})
    out = Bars(lanes, binned=len(timed) > EXACT)
    if not timed:
        return out
    origin = min(t.started for t in timed)
    if not out.binned:
        for t in sorted(timed, key=lambda t: t.started):
            start = t.started - origin
            out.add(t.worker, start, start + max(t.duration, 0.0), t.step, 1, 1.0)
        return out
    span = max(max(t.started + t.duration for t in timed) - origin, 1e-6)
    count = max(BINS[0], min(BINS[1], CELLS // max(len(lanes), 1)))
    width = span / count
    busy: dict[tuple[str, int], dict[str, float]] = {}  # (lane, bin) -> step -> seconds
    runs: dict[tuple[str, int], int] = {}  # (lane, bin) -> task runs that started there
    for t in timed:
        start = t.started - origin
        end = start + max(t.duration, 0.0)
        first = min(int(start / width), count - 1)
        last = min(int(end / width), count - 1)
        runs[(t.worker, first)] = runs.get((t.worker, first), 0) + 1
        for b in range(first, last + 1):
            seconds = min(end, (b + 1) * width) - max(start, b * width)
            if seconds > 0 or first == last:
                cell = busy.setdefault((t.worker, b), {})
                cell[t.step] = cell.get(t.step, 0.0) + max(seconds, 0.0)
    for lane in lanes:
        _merge(out, lane, busy, runs, count, width)
    return out


def _merge(
    out: Bars,
    lane: str,
    busy: dict[tuple[str, int], dict[str, float]],
    runs: dict[tuple[str, int], int],
    count: int,
    width: float,
) -> None:
    """Add one lane's bins to ``out``, neighbours of one step as one bar."""
    current: list[float | str | int] | None = None  # [step, first bin, last bin, runs, busy]
    for b in range(count):
        cell = busy.get((lane, b))
        if not cell:
            current = _close(out, lane, current, width)
            continue
        step = max(cell, key=lambda s: cell[s])
        share = min(sum(cell.values()) / width, 1.0)
        if current is not None and current[0] == step and current[2] == b - 1:
            current[2] = b
            current[3] = int(current[3]) + runs.get((lane, b), 0)
            current[4] = float(current[4]) + share
            continue
        _close(out, lane, current, width)
        current = [step, b, b, runs.get((lane, b), 0), share]
    _close(out, lane, current, width)


def _close(
    out: Bars, lane: str, current: list[float | str | int] | None, width: float
) -> list[float | str | int] | None:
    if current is not None:
        step, first, last, runs, busy = current
        bins = int(last) - int(first) + 1
        out.add(lane, int(first) * width, (int(last) + 1) * width, str(step), int(runs), 0.0)
        out.busy[-1] = max(float(busy) / bins, 0.15)  # a short task still shows
    return None
