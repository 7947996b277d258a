"""The commands on the user's pipeline: run, status, invalidate, restore, graph, clean."""

from __future__ import annotations

import functools
import shlex
import sys
from collections.abc import Callable
from typing import IO, Any

import click

from pipex.cli import entry, failures, output
from pipex.cli.selectors import Selectors, read_lines
from pipex.compute import run as run_pipeline
from pipex.exceptions import PipelineError, PipexError, SettingError, TargetError
from pipex.running.report import Results
from pipex.steer.clean import leftovers
from pipex.steer.graph import Graph
from pipex.steer.invalidate import Invalidation
from pipex.steer.invalidate import restore as restore_last
from pipex.steer.status import status as pipeline_status
from pipex.steer.visualize import visualize

#: The exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells say it).
INTERRUPTED = 130


def pipeline(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ENTRY argument and --param options; a pipeline whose targets cannot be rendered
    (a :class:`TargetError`) is a usage error in one line."""

    @functools.wraps(command)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (TargetError, SettingError) as exc:
            raise entry.UsageError(str(exc)) from None

    return click.argument("entry_point", metavar="ENTRY")(entry.params(guarded))


@click.command()
@pipeline
@click.option(
    "--scheduler", default=None, help="threads (default), sync, processes, or an address."
)
@click.option(
    "--keep-going/--stop",
    default=None,
    help="Go on with independent work after a failure (default), or stop at the first.",
)
@click.option("--progress/--no-progress", default=None, help="A progress bar on stderr.")
@click.option(
    "--skip-failed",
    is_flag=True,
    help="Leave alone the tasks whose last run failed, and what needs them (see pipex log).",
)
def run(
    entry_point: str,
    params: tuple[str, ...],
    scheduler: str | None,
    keep_going: bool | None,
    progress: bool | None,
    skip_failed: bool,
) -> None:
    """Run what is missing in the pipeline ENTRY (exit code 1 if a task fails)."""
    nodes = entry.nodes(entry_point, params)
    try:
        results = run_pipeline(  # the summary is printed below, on stdout
            nodes,
            scheduler=scheduler,
            keep_going=keep_going,
            progress=progress,
            skip_failed=skip_failed,
        )
    except PipelineError as error:
        click.echo(error.message, err=True)
        failures.tracebacks(error.failed)  # type: ignore[arg-type]  # Failure records
        summary = getattr(error, "summary", None)
        if summary is not None:
            click.echo(str(summary))
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C: pipex.compute said what was saved
        sys.exit(INTERRUPTED)
    except SettingError:
        raise  # a usage error (exit code 2), said by @pipeline
    except PipexError as error:  # the run could not go on (no cluster, say): said in full
        raise click.ClickException(str(error)) from None
    except Exception as exc:
        if failures.stopped(exc):  # --stop: the first failure, raised
            sys.exit(1)
        raise
    assert isinstance(results, Results)  # not a bare tuple: the pipeline has nodes
    output.targets("skipped", results.skipped)
    click.echo(str(results.summary))


@click.command()
@pipeline
@click.option("--list", "listed", is_flag=True, help="Also list every target to run.")
def status(entry_point: str, params: tuple[str, ...], listed: bool) -> None:
    """What `pipex run` would find done and run, per step. Loads no output."""
    shown = pipeline_status(entry.nodes(entry_point, params))
    output.status(shown)
    if listed:
        for target in shown.to_run:
            click.echo(f"to run {target}")
    elif shown.to_run:
        click.echo(f"pipex run would run {len(shown.to_run):,} task(s).")
    else:
        click.echo("Nothing to run: every requested target exists.")


@click.command()
@pipeline
@click.option("--step", "steps", multiple=True, help="Select the targets of this step.")
@click.option(
    "--match", "patterns", multiple=True, metavar="GLOB", help="Select the targets matching GLOB."
)
@click.option(
    "--from",
    "listing",
    type=click.File("r"),
    metavar="FILE",
    help="Select the targets named in FILE (- for stdin): a target path, location or glob "
    "per line.",
)
@click.option("--dry-run", "-n", is_flag=True, help="Show what would be removed; remove nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask, however many targets go.")
@click.option(
    "--ask-above",
    default=100,
    show_default=True,
    metavar="N",
    help="Ask before removing more than N targets.",
)
def invalidate(
    entry_point: str,
    params: tuple[str, ...],
    steps: tuple[str, ...],
    patterns: tuple[str, ...],
    listing: IO[str] | None,
    dry_run: bool,
    yes: bool,
    ask_above: int,
) -> None:
    """Reset targets of ENTRY and everything that depends on them, so `pipex run` reruns them.

    Select with --step, --match (fnmatch globs on target paths) and --from: each one given
    narrows the others (a target must be of a --step, match a --match and be named in the
    --from file); repeat --step or --match for alternatives. Removed targets go to a trash
    under their store's root; `pipex restore ENTRY` undoes the last invalidation.
    """
    selectors = Selectors(steps, patterns, read_lines(listing))
    if listing is not None and not selectors.lines:
        raise click.BadParameter(f"{listing.name} names no target", param_hint="--from")
    if not selectors:
        raise click.UsageError(
            "select what to reset with --step STEP, --match GLOB or --from FILE"
        )
    roots = entry.nodes(entry_point, params)
    graph = Graph(roots)
    known = set(graph.steps())
    unknown = [s for s in steps if s not in known]
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)} (the steps are {', '.join(graph.steps())})",
            param_hint="--step",
        )
    selected = selectors.select(graph.nodes)
    if selectors.unmatched:
        shown = ", ".join(selectors.unmatched[:10])
        more = len(selectors.unmatched) - 10
        click.echo(
            f"pipex: {len(selectors.unmatched):,} line(s) of --from name no target of "
            f"{entry_point}: {shown}" + (f" and {more:,} more" if more > 0 else ""),
            err=True,
        )
    found = Invalidation.of(selected, within=roots)
    if not found:
        click.echo("Nothing to reset: no existing target is selected.")
        return
    order = [s for s in graph.steps() if s in found.steps]
    rows = [(s, found.steps[s]) for s in order] + [("total", len(found))]
    output.table(("step", "targets"), rows)
    asking = len(found) > ask_above and not yes
    waiting = dry_run or asking  # nothing moves before it is confirmed
    output.targets("would move to the trash:" if waiting else "removing", found.targets)
    if dry_run:
        click.echo(f"Dry run: {len(found):,} target(s) would move to the trash.")
        return
    if asking:
        try:
            click.confirm(f"Move {len(found):,} targets to the trash?", abort=True)
        except click.Abort:
            raise entry.UsageError(  # no answer (no terminal), or no
                f"nothing removed; pass --yes to remove more than {ask_above} targets "
                "without being asked"
            ) from None
    found.apply()
    again = command_line(entry_point, params)
    click.echo(
        f"Moved {len(found):,} target(s) to the trash; `pipex run {again}` reruns them, "
        f"`pipex restore {again}` puts them back."
    )


def command_line(entry_point: str, params: tuple[str, ...]) -> str:
    """ENTRY and its --param settings as the shell takes them again (after a command)."""
    return shlex.join([entry_point, *(arg for p in params for arg in ("-p", p))])


@click.command()
@pipeline
def restore(entry_point: str, params: tuple[str, ...]) -> None:
    """Undo the last invalidation of ENTRY's targets, byte for byte."""
    stores = {node.target.store for node in Graph(entry.nodes(entry_point, params)).nodes}
    restored = restore_last(*stores)
    if not restored:
        click.echo("Nothing to restore: the trash is empty.")
        return
    output.targets("restored", restored)
    click.echo(f"Restored {len(restored):,} target(s).")


@click.command()
@pipeline
@click.option(
    "--output",
    "-o",
    "filename",
    default="pipeline.svg",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The picture: .svg (any browser) or .dot (Graphviz).",
)
@click.option(
    "--max-boxes",
    default=60,
    show_default=True,
    help="One box per target up to this many targets; one per step above.",
)
def graph(entry_point: str, params: tuple[str, ...], filename: str, max_boxes: int) -> None:
    """Draw ENTRY's graph coloured by status (done, to run, failed last time)."""
    nodes = entry.nodes(entry_point, params)
    try:
        written = visualize(nodes, filename=filename, max_boxes=max_boxes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--output") from None
    click.echo(f"Wrote {written}")


@click.command()
@pipeline
@click.option("--dry-run", "-n", is_flag=True, help="Show what would be removed.")
def clean(entry_point: str, params: tuple[str, ...], dry_run: bool) -> None:
    """Remove temporaries and expired claims a crashed run left beside ENTRY's targets (and
    the local files a killed writer staged for S3 or SQLite), and empty the trash (with the
    folders a killed invalidation left there).

    Do not run it while a run writes to the same folders.
    """
    found = leftovers(Graph(entry.nodes(entry_point, params)).nodes)
    verb = "would remove" if dry_run else "removing"
    output.targets(verb, found.temporaries)
    output.targets(f"{verb} the expired claim on", [target for target, _ in found.claims])
    output.targets(f"{verb} the local staged file", found.staged)
    orphans = [
        f"{store.location(o.folder)} ({output.size(o.size)})"
        for store, found_here in found.orphans.items()
        for o in found_here
    ]
    output.targets(f"{verb} the folder of an invalidation cut short,", orphans)
    staged = f" {len(found.staged):,} local staged file(s) of writers that are gone." * bool(
        found.staged
    )
    cut = (
        f" {len(orphans):,} invalidation(s) cut short left {output.size(found.orphaned)} in "
        "the trash (never restored)."
    ) * bool(orphans)
    click.echo(
        f"{len(found.temporaries):,} temporary file(s), {len(found.claims):,} expired "
        f"claim(s); the trash holds {found.trashed:,} "
        f"target(s) from {sum(len(e) for e in found.trash.values())} invalidation(s)."
        f"{cut}{staged}"
    )
    if not (found.temporaries or found.claims or found.staged or found.trashed or orphans):
        click.echo("Nothing to remove.")
        return
    if dry_run:
        click.echo("Dry run: nothing removed.")
        return
    found.remove()
    click.echo("Removed them; `pipex restore` has nothing left to undo.")


ALL = (run, status, invalidate, restore, graph, clean)
