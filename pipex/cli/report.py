"""``pipex report``: the report page of the user's pipeline, one HTML file."""

from __future__ import annotations

import click

from pipex.cli import entry
from pipex.cli.commands import pipeline


@click.command()
@pipeline
@click.option(
    "--output",
    "-o",
    "filename",
    default="report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The page: one HTML file that opens offline in any browser.",
)
def report(entry_point: str, params: tuple[str, ...], filename: str) -> None:
    """Write ENTRY's report page: status per step, its latest run's timeline, durations and
    failures (grouped by step and error), the run history and the step graph.

    Reads the targets' listings and the run ledger; loads no output. Needs the report
    extra: pip install 'dask-pipex[report]'.
    """
    from pipex.pages import report as write

    nodes = entry.nodes(entry_point, params)
    try:
        written = write(nodes, filename=filename, title=f"pipex report: {entry_point}")
    except ImportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote {click.format_filename(written)}")
