"""How ``pipex run`` shows failures: grouped by step and error (as the ``PipelineError``
message), then the user's frames of the first groups' tracebacks; the first failure of a
``--stop`` run the same way, never a raw traceback through click and pipex."""

from __future__ import annotations

import textwrap
import traceback
from collections.abc import Sequence

import click

from pipex.core import frames, grouping
from pipex.core.outcomes import Failure, raised_by, raised_target, unmark_raised
from pipex.redact import redact
from pipex.running.report import first_of_each

#: How many groups' tracebacks are shown (each group's line is shown in any case).
TRACEBACKS = 3


def tracebacks(failed: Sequence[grouping.Failed], shown: int = TRACEBACKS) -> None:
    """The user's frames of the traceback of the first failure of the largest groups."""
    groups = grouping.group(failed)
    for g in groups[:shown]:
        click.echo(f"Traceback of {g.step} ({g.error}), your code only:", err=True)
        click.echo(textwrap.indent(redact(frames.users(g.traceback)), "  "), err=True)
    if len(groups) > shown:
        click.echo(
            f"(tracebacks of the {len(groups) - shown} other group(s): pipex log --traceback)",
            err=True,
        )


def stopped(exc: Exception) -> bool:
    """Show ``exc``, raised out of a run by a task (``--stop``, ``keep-going: false``), as a
    failure group with the user's frames; ``False`` if no task raised it."""
    key = raised_by(exc)
    if key is None:
        return False
    target = raised_target(exc) or "?"
    unmark_raised(exc)
    text = "".join(traceback.format_exception(exc))
    failure = Failure(key, target, exc, text)  # type: ignore[arg-type]
    groups = grouping.group([failure])
    lines = grouping.describe(groups, first_of_each([failure], groups))
    click.echo(
        redact(
            "\n".join(
                [
                    "pipex task failed; the run stopped there (--stop, or keep-going: false).",
                    *lines,
                    "Its target was not written; rerun to go on from there.",
                ]
            )
        ),
        err=True,
    )
    tracebacks([failure])
    return True
