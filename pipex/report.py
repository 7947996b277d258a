"""What a run did: the summary of :func:`pipex.compute` and its failure report."""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipex.exceptions import PipelineError
from pipex.execution import Failure, NotRun


@dataclass(frozen=True)
class Summary:
    """Counts of one :func:`pipex.compute` call."""

    requested: int  #: distinct targets asked for
    done: int  #: targets found already written (nothing below them was visited)
    ran: int  #: tasks that ran and wrote their target
    failed: int  #: tasks that raised
    not_run: int  #: tasks skipped because an input failed
    seconds: float  #: wall time of the whole call

    def __str__(self) -> str:
        return (
            f"pipex: {self.requested} requested, {self.done} already done, ran {self.ran}, "
            f"failed {self.failed}, not run {self.not_run} in {self.seconds:.2f} s"
        )


class Results(tuple):
    """The tuple :func:`pipex.compute` returns, with the run's :class:`Summary` attached."""

    summary: Summary

    def __new__(cls, values: Iterable[Any], summary: Summary) -> Results:
        self = super().__new__(cls, values)
        self.summary = summary
        return self


def summarize(requested: int, done: int, outcomes: Iterable[Any], seconds: float) -> Summary:
    """Count ran / failed / not-run tasks among a run's outcomes."""
    ran = failed = not_run = 0
    for outcome in outcomes:
        if isinstance(outcome, Failure):
            failed += 1
        elif isinstance(outcome, NotRun):
            not_run += 1
        else:
            ran += 1
    return Summary(requested, done, ran, failed, not_run, seconds)


def failure_error(outcomes: Iterable[Any], summary: Summary) -> PipelineError | None:
    """One error naming every failed task, or ``None`` when nothing failed."""
    outcomes = list(outcomes)
    failed = [o for o in outcomes if isinstance(o, Failure)]
    if not failed:
        return None
    not_run = [o for o in outcomes if isinstance(o, NotRun)]
    lines = [f"{len(failed)} pipex task(s) failed; {len(not_run)} not run: an input failed."]
    lines += [f"  failed: {f.key} (target {f.target}): {one_line(f.exception)}" for f in failed]
    lines += [f"  not run: {n.key} (needs {', '.join(sorted(n.causes))})" for n in not_run]
    lines.append("Targets of these tasks were not written; rerun to run only them.")
    error = PipelineError(
        "\n".join(lines), [_annotated(f) for f in failed], failed=failed, not_run=not_run
    )
    error.summary = summary
    return error


def _annotated(failure: Failure) -> Exception:
    exc = failure.exception
    if not isinstance(exc, Exception):
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    note = f"pipex task {failure.key}, target {failure.target}"
    if exc.__traceback__ is None:  # it crossed a process boundary: show where it happened
        note += "\nTraceback on the worker:\n" + failure.traceback.rstrip()
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)
    return exc


def one_line(exc: BaseException) -> str:
    """The last line of an exception as Python prints it (`ValueError: bad input`)."""
    text = "".join(traceback.format_exception_only(exc)).strip().splitlines()
    return text[-1] if text else type(exc).__name__
