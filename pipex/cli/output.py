"""What the commands print: rich tables and colours on a terminal, plain text when piped."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from pipex.steer.status import HEADER, Status
from pipex.steer.table import plain

#: colour of each status column on a terminal
COLOURS = {"done": "green", "to run": "yellow", "failed": "red", "not checked": "dim"}


def terminal() -> bool:
    """Whether standard output is a terminal (rich output) rather than a pipe or file."""
    return sys.stdout.isatty()


def table(
    header: Sequence[str], rows: Sequence[Sequence[object]], title: str = "", total: bool = True
) -> None:
    """A table: the first column left-aligned, numbers right-aligned; a total row last
    (set apart by a rule) unless not ``total``."""
    if terminal():
        cells = [[f"{c:,}" if isinstance(c, int) else str(c) for c in row] for row in rows]
        from rich.console import Console
        from rich.table import Table

        shown = Table(title=title or None, title_justify="left")
        for i, name in enumerate(header):
            shown.add_column(name, justify="left" if i == 0 else "right", style=COLOURS.get(name))
        for k, row in enumerate(cells):
            shown.add_row(*row, end_section=total and k == len(cells) - 2)
        Console().print(shown)
        return
    if title:
        click.echo(title)
    click.echo(plain(header, rows, total))


def status(shown: Status) -> None:
    """The status table of a pipeline."""
    table(HEADER, shown.rows())


def size(count: int) -> str:
    """A number of bytes for people: ``"512 B"``, ``"3.4 MB"``, ``"1.2 GB"``."""
    amount = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if amount < 1000 or unit == "TB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    raise AssertionError("unreachable")


def targets(label: str, items: Sequence[object], limit: int = 10) -> None:
    """Up to ``limit`` of ``items``, one per line, and how many more there are."""
    for item in items[:limit]:
        click.echo(f"  {label} {item}")
    if len(items) > limit:
        click.echo(f"  ... and {len(items) - limit:,} more")
