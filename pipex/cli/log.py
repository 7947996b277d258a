"""``pipex log``: what the run ledger remembers: recent runs, what fails now, slow steps."""

from __future__ import annotations

import os
import time
from typing import Any

import click

from pipex.cli import entry, output
from pipex.running import records
from pipex.running.ledger import location
from pipex.steer.graph import Graph
from pipex.stores import FileStore


@click.command()
@click.argument("entry_point", metavar="[ENTRY]", required=False)
@entry.params
@click.option("--runs", "-n", default=5, show_default=True, help="How many recent runs.")
@click.option("--limit", default=10, show_default=True, help="Rows of the other tables.")
def log(entry_point: str | None, params: tuple[str, ...], runs: int, limit: int) -> None:
    """What the run ledger remembers of ENTRY's stores (default: the working directory's).

    Shows the recent runs, the targets whose latest run failed grouped by error, and the
    slowest steps (tasks run on dask's local schedulers have durations). Loads no output.
    """
    files = _ledgers(entry_point, params)
    shown = False
    for file in files:
        if file is None or not os.path.exists(file):
            continue
        shown = True
        if len(files) > 1:
            click.echo(f"ledger {file}")
        _show(file, runs, limit)
    if not shown:
        click.echo("No run ledger yet: nothing has run here (or pipex.ledger is false).")


def _ledgers(entry_point: str | None, params: tuple[str, ...]) -> list[str | None]:
    if entry_point is None:
        return [location(FileStore(os.getcwd()))]
    stores = {node.target.store for node in Graph(entry.nodes(entry_point, params)).nodes}
    return sorted({location(store) for store in stores}, key=str)


def _show(file: str, runs: int, limit: int) -> None:
    recent = records.runs(file, runs)
    output.table(
        ("run", "started", "seconds", "ran", "failed", "not run"),
        [
            (r.run, _when(r.started), f"{r.finished - r.started:.1f}", r.ran, r.failed, r.not_run)
            for r in recent
        ],
        title="Recent runs",
        total=False,
    )
    failing = records.failing(file, limit)
    if failing:
        output.table(
            ("error", "targets", "step", "for example"),
            [(f.error, f.count, f.step, f.example) for f in failing],
            title="Failing now (the latest run of each target failed), by error",
            total=False,
        )
    else:
        click.echo("Failing now: none.")
    slow = records.slowest(file, limit)
    if slow:
        output.table(
            ("step", "runs", "mean s", "longest s", "total s"),
            [(t.step, t.runs, _s(t.mean), _s(t.longest), _s(t.total)) for t in slow],
            title="Slowest steps",
            total=False,
        )


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _s(seconds: Any) -> str:
    return f"{seconds:.3f}"
