"""What a run did: the summary of :func:`pipex.compute` and its failure report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pipex.core import grouping
from pipex.core.outcomes import Failure, NotRun, Tally
from pipex.exceptions import PipelineError
from pipex.redact import redact


@dataclass(frozen=True)
class Summary:
    """Counts of one :func:`pipex.compute` call."""

    requested: int  #: distinct targets asked for
    done: int  #: of those, targets already written (nothing below them was visited)
    ran: int  #: tasks that ran and wrote their target
    failed: int  #: tasks that raised
    not_run: int  #: tasks skipped because an input failed
    seconds: float  #: wall time of the whole call
    reused: int = 0  #: finished inputs (not requested) that tasks which ran read
    skipped: int = 0  #: left alone with skip_failed: failed last time, or need one that did
    waited: int = 0  #: claimed by another runner when this one came to them; it wrote them
    found: int = 0  #: found written when claimed, no other runner seen (a lost worker's, say)

    def __str__(self) -> str:
        text = (
            f"pipex: {self.requested} requested, {self.done} already done, ran {self.ran}, "
            f"failed {self.failed}, not run {self.not_run}"
        )
        if self.waited:
            text += f", waited {self.waited} (written by another runner)"
        if self.found:
            text += f", found {self.found} written meanwhile (by an earlier attempt or runner)"
        if self.skipped:
            text += f", skipped {self.skipped} (failed last time, or need a task that did)"
        if self.reused:
            text += f"; {self.reused} finished input(s) reused"
        return f"{text} in {self.seconds:.2f} s"


class Results(tuple):
    """The tuple :func:`pipex.compute` returns, with the run's :class:`Summary` attached."""

    summary: Summary
    skipped: list[Any]  #: the targets left alone with skip_failed, inputs first

    def __new__(
        cls, values: Iterable[Any], summary: Summary, skipped: Iterable[Any] = ()
    ) -> Results:
        self = super().__new__(cls, values)
        self.summary = summary
        self.skipped = list(skipped)
        return self


#: How many failure groups, and tasks not run, the failure message names (the error keeps
#: them all).
SHOWN = 10


class Report:
    """The run report: an observer that keeps the tally and every failed and unrun task."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.failed: list[Failure] = []
        self.not_run: list[NotRun] = []

    def record(self, key: str, outcome: Any) -> None:
        self.tally.add(outcome)
        if isinstance(outcome, Failure):
            self.failed.append(outcome)
        elif isinstance(outcome, NotRun):
            self.not_run.append(outcome)

    def batch(self, batch: Any, result: Any) -> None:
        """Take a batch of items' outcomes at once (only the ones not written are kept)."""
        self.tally.ran += sum(result.ran)
        for _, _, outcome in result.outcomes:
            self.record("", outcome)

    def summary(
        self, requested: int, done: int, seconds: float, reused: int = 0, skipped: int = 0
    ) -> Summary:
        """The run's counts."""
        t = self.tally
        counts = (t.ran, t.failed, t.not_run, seconds, reused, skipped, t.waited, t.found)
        return Summary(requested, done, *counts)

    def error(self, summary: Summary) -> PipelineError | None:
        """One error naming every failed task, or ``None`` when nothing failed.

        Failures are grouped by step and error (:mod:`pipex.core.grouping`); the message
        shows a few groups and tasks not run, whatever their number, and one exception per
        group; the error keeps every failure and unrun task (``.failed``, ``.not_run``).
        """
        failed, not_run = self.failed, self.not_run
        if not failed:
            return None
        groups = grouping.group(failed)
        firsts = first_of_each(failed, groups)
        head = f"{len(failed):,} pipex task(s) failed"
        if not_run:
            head += f"; {len(not_run):,} not run because an input failed"
        lines = [head + ".", *grouping.describe(groups, firsts, SHOWN)]
        for n in not_run[: SHOWN // 2]:
            lines.append(f"  not run: {n.key} (needs {', '.join(sorted(n.causes)[:3])})")
        if len(not_run) > SHOWN // 2:
            more = len(not_run) - SHOWN // 2
            lines.append(f"    ... and {more:,} more not run (all in error.not_run)")
        lines.append("Targets of these tasks were not written; rerun to run only them.")
        raised = PipelineError(
            redact("\n".join(lines)),
            [_annotated(f) for f in firsts.values()],
            failed=failed,
            not_run=not_run,
        )
        raised.summary = summary
        return raised


def first_of_each(
    failures: Sequence[Failure], groups: Sequence[grouping.FailureGroup]
) -> dict[str, Failure]:
    """The first failure of each group, by its target (as the group shows it), in the
    groups' order."""
    wanted = {g.targets[0]: g for g in groups if g.targets}
    found: dict[str, Failure] = {}
    for f in failures:
        shown = str(f.target)
        if shown in wanted and shown not in found:
            found[shown] = f
            if len(found) == len(wanted):
                break
    return {t: found[t] for t in wanted if t in found}


def _annotated(failure: Failure) -> Exception:
    exc = failure.exception
    if not isinstance(exc, Exception):
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    note = f"pipex task {failure.key}, target {failure.target}"
    if exc.__traceback__ is None:  # it crossed a process boundary: show where it happened
        note += "\nTraceback on the worker:\n" + redact(failure.traceback.rstrip())
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)
    return exc
