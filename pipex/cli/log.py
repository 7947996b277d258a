"""``pipex log``: what the run ledger remembers: recent runs, what fails now, slow steps."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import click

from pipex.cli import entry, output
from pipex.core import grouping
from pipex.running import records
from pipex.running.ledger import home, location
from pipex.steer.graph import Graph
from pipex.stores import FileStore


@click.command()
@click.argument("entry_point", metavar="[ENTRY]", required=False)
@entry.params
@click.option("--runs", "-n", default=5, show_default=True, help="How many recent runs.")
@click.option("--limit", default=10, show_default=True, help="Rows of the other tables.")
def log(entry_point: str | None, params: tuple[str, ...], runs: int, limit: int) -> None:
    """What the run ledger remembers of ENTRY (default: of the working directory's ledger).

    Shows the recent runs and how each ended (finished, interrupted, stopped by an error,
    killed, running), the targets whose latest run failed grouped by error, and the slowest
    steps (tasks run on dask's local schedulers have durations). With ENTRY, only the runs
    and targets of ENTRY's pipeline. Loads no output.
    """
    ledgers = _ledgers(entry_point, params)
    shown = False
    for file, paths in ledgers.items():
        if file is None or not os.path.exists(file):
            continue
        shown = True
        if len(ledgers) > 1:
            click.echo(f"ledger {file}")
        _show(file, runs, limit, paths)
    if not shown:
        click.echo("No run ledger yet: nothing has run here (or pipex.ledger is false).")


def _ledgers(
    entry_point: str | None, params: tuple[str, ...]
) -> Mapping[str | None, list[str] | None]:
    """Each ledger file to show, with the paths of ENTRY's targets it records (``None``:
    all of them)."""
    if entry_point is None:
        return {location(FileStore(os.getcwd())): None}
    paths: dict[str | None, list[str]] = {}
    for node in Graph(entry.nodes(entry_point, params)).nodes:
        paths.setdefault(location(home(node)), []).append(node.target.path)
    return {file: paths[file] for file in sorted(paths, key=str)}


def _show(file: str, runs: int, limit: int, paths: list[str] | None) -> None:
    recent = records.runs(file, runs, paths)
    output.table(
        ("run", "ended", "started", "seconds", "ran", "failed", "not run"),
        [_run(r) for r in recent],
        title="Recent runs",
        total=False,
    )
    failed = records.failed(file, paths)
    if failed:
        groups = grouping.group(failed)
        click.echo(
            f"Failing now: {len(failed):,} target(s) whose latest run failed, by step and error"
        )
        examples = {f.target: f for f in failed}  # the first failure of each group, by target
        for line in grouping.describe(groups, examples, limit, "the run ledger"):
            click.echo(line)
    else:
        click.echo("Failing now: none.")
    slow = records.slowest(file, limit, paths)
    if slow:
        output.table(
            ("step", "runs", "mean s", "longest s", "total s"),
            [(t.step, t.runs, _s(t.mean), _s(t.longest), _s(t.total)) for t in slow],
            title="Slowest steps",
            total=False,
        )


def _run(r: records.Run) -> tuple[Any, ...]:
    seconds = f"{r.finished - r.started:.1f}"
    return (r.run, r.ended, _when(r.started), seconds, r.ran, r.failed, r.not_run)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _s(seconds: Any) -> str:
    return f"{seconds:.3f}"
