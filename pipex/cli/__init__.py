"""The ``pipex`` command: the demo, and seeing and steering the user's own pipeline."""

from __future__ import annotations

import os

import click

from pipex import __version__
from pipex.cli import commands, log, report
from pipex.exceptions import PipelineError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipex")
def main() -> None:
    """pipex: a Make/Luigi-style pipeline cache for Python, native to Dask.

    Commands other than demo take an ENTRY point: FILE.py:FUNCTION or MODULE:FUNCTION, a
    function returning the pipeline's final nodes (its parameters as --param KEY=VALUE).
    Exit codes: 0 ok, 1 task failures, 2 usage errors.
    """


@main.command()
@click.argument("folder", default="pipex-demo", type=click.Path(file_okay=False))
@click.option("--images", "-n", default=24, show_default=True, help="Number of pages.")
@click.option(
    "--scheduler",
    default=None,
    help="dask scheduler: threads (default), sync, processes.",
)
@click.option(
    "--damaged",
    default=0,
    show_default=True,
    help="This many pages cannot be scanned: see failures (and the report page).",
)
def demo(folder: str, images: int, scheduler: str | None, damaged: int) -> None:
    """Run the demo pipeline into FOLDER: IMAGES pages x 4 steps, each output a .npy file,
    and write the run's report page, FOLDER/report.html.

    Run it twice: the second run finds every output and runs nothing. Delete one output
    (say FOLDER/binarize/page-00003.npy) and run again: just that task runs, from the
    denoised page already on disk.
    """
    from pipex import demo as pipeline

    if images < 1:
        raise click.BadParameter("must be at least 1", param_hint="--images")
    page = os.path.join(folder, "report.html")
    try:
        report = pipeline.build_and_compute(
            folder, images, damaged, scheduler=scheduler, report=page
        )
    except PipelineError as exc:
        click.echo(str(exc), err=True)
        click.echo(f"report: {click.format_filename(page)} (open it in a browser)")
        raise SystemExit(1) from None
    for line in report.lines():
        click.echo(line)
    click.echo(f"outputs in {click.format_filename(folder)}/{{{','.join(pipeline.STEPS)}}}/")
    click.echo(f"report: {click.format_filename(page)} (open it in a browser)")


for command in (*commands.ALL, log.log, report.report):
    main.add_command(command)
