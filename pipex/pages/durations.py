"""How long a run's task runs took, per step: counts, quartiles, mean, longest and total."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipex.pages.facts import TaskRun


@dataclass(frozen=True)
class Spread:
    """The durations of one step's task runs, in seconds."""

    step: str
    runs: int
    least: float
    lower: float  #: first quartile
    median: float
    upper: float  #: third quartile
    most: float
    mean: float
    total: float


def spreads(timed: Sequence[TaskRun], steps: Sequence[str]) -> list[Spread]:
    """The :class:`Spread` of each step that has timed runs, in the order of ``steps``."""
    by_step: dict[str, list[float]] = {}
    for t in timed:
        by_step.setdefault(t.step, []).append(max(t.duration, 0.0))
    order = [s for s in steps if s in by_step] + sorted(set(by_step) - set(steps))
    out = []
    for step in order:
        values = sorted(by_step[step])
        total = sum(values)
        out.append(
            Spread(
                step,
                len(values),
                values[0],
                _quantile(values, 0.25),
                _quantile(values, 0.5),
                _quantile(values, 0.75),
                values[-1],
                total / len(values),
                total,
            )
        )
    return out


def _quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted ``values`` (linear between neighbours)."""
    at = q * (len(values) - 1)
    low = int(at)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (at - low)
