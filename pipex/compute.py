"""``pipex.compute``: resolve on the client, run only what is missing, report every failure."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from pipex import settings
from pipex.collector import deferred, resumed
from pipex.core.items import DONE, missing_count
from pipex.core.outcomes import Failure, Outcome, raised_by
from pipex.core.plan import Plan, exists_many, resolve
from pipex.core.targets import Target
from pipex.core.walk import replace, visit
from pipex.exceptions import PipelineError, StoreError
from pipex.executors import check_options, select
from pipex.expand import Expansion
from pipex.mapped import Mapped, Targets
from pipex.node import Collect, Node
from pipex.redact import scrub
from pipex.registry import load as load_page
from pipex.running import Observers, records, staleness
from pipex.running import items as items_rows
from pipex.running.expansion import Expanding
from pipex.running.ledger import Ledger, home
from pipex.running.lineages import Lineages
from pipex.running.progress import Progress, announced
from pipex.running.report import Report, Results

logger = logging.getLogger("pipex")

#: The report page of a run (a layer above: named here, imported when asked for).
REPORT = "pipex.pages:RunPage"


def compute(
    *args: Any,
    load: bool = False,
    scheduler: Any = None,
    keep_going: bool | None = None,
    progress: bool | None = None,
    skip_failed: bool = False,
    report: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> tuple[Any, ...]:
    """Compute nodes, running only what is missing below them.

    Returns a tuple like ``dask.compute``: a :class:`Target` per node (its data with
    ``load=True``); its ``.summary`` counts what was done, ran, failed and not run.
    Lists, tuples and dicts of nodes are traversed; other values pass through. An expansion
    (:func:`pipex.expand`) gives what its ``fn`` returned, each node replaced the same way.
    ``scheduler`` is as in dask (``"threads"``, ``"sync"``, ``"processes"``, a
    ``distributed.Client``, or a scheduler address); by default the active distributed client
    if there is one, else dask's threads. With ``keep_going`` (default: ``pipex.keep-going``,
    true) independent work goes on after a failure and one :class:`PipelineError` lists every
    failed and unrun task at the end; otherwise the first failure is raised at once.
    ``progress`` shows a bar (default: ``pipex.progress``, on when stderr is a terminal); the
    run's one-line summary goes to stderr at the end, terminal or not, unless ``progress`` (or
    the setting) is false. With ``skip_failed``, tasks whose latest run (in the run ledger)
    failed, and everything that depends on them, are left alone: not run, not reported as
    failures, counted as ``skipped`` in the summary; each gives its (absent) Target, or
    ``None`` with ``load=True``. Every outcome goes to the run ledger unless ``pipex.ledger``
    is false. Scheduler options go to the scheduler (``num_workers=`` for dask's local ones;
    ``workers=``, ``resources=``, ``priority=``... for a cluster); any other keyword is a
    ``TypeError``, before anything runs. With ``report`` (a file name), the run's report
    page (:func:`pipex.report`: the pipeline's status and its latest run) is written there
    when the run ends, however it ends (it needs the ``report`` extra, checked first).
    """
    try:
        results = run(
            *args,
            load=load,
            scheduler=scheduler,
            keep_going=keep_going,
            progress=progress,
            skip_failed=skip_failed,
            report=report,
            **kwargs,
        )
    except PipelineError as error:
        if announced(progress) and getattr(error, "summary", None) is not None:
            print(error.summary, file=sys.stderr)
        raise
    if announced(progress) and isinstance(results, Results):
        print(results.summary, file=sys.stderr)
    return results


def run(
    *args: Any, report: str | os.PathLike[str] | None = None, **options: Any
) -> tuple[Any, ...]:
    """:func:`compute` without the summary line on stderr: for callers that show the
    :class:`Summary` themselves (``pipex run``, the demo); ``progress`` is the bar alone."""
    page = None if report is None else load_page(REPORT)(report)  # the extra, checked first
    try:
        return _run(*args, **options)
    finally:
        if page is not None:
            page.write(args)


def _run(
    *args: Any,
    load: bool = False,
    scheduler: Any = None,
    keep_going: bool | None = None,
    progress: bool | None = None,
    skip_failed: bool = False,
    **kwargs: Any,
) -> tuple[Any, ...]:
    start = time.perf_counter()
    check_options(kwargs)
    settings.check_all()  # a wrong pipex.* value: one error before anything runs
    nodes: list[Node] = []
    collect = _Roots(nodes)
    for arg in args:
        visit(arg, collect)
    if not nodes and not collect.expansions and not collect.mapped:
        return args
    if keep_going is None:
        keep_going = bool(settings.get("keep-going"))
    expanding = Expanding(collect.expansions)
    roots = nodes + expanding.sources
    families = [m.family for m in collect.mapped]
    with deferred():  # a Target per visited node, and the plan: many long-lived objects
        stale = staleness.check([*roots, *families])
        plan = resolve(roots, stale=stale, families=families, items_with_steps=True)
        first, later = plan.split()  # the nodes that read items of mapped steps: later
        if plan.awaited and _steps_read(plan, later):
            plan = resolve(roots, stale=stale, families=families)
            first, later = plan.split()
    skipped: list[Node] = []
    skipped_items = 0
    if skip_failed and plan.missing:
        plan, skipped = plan.without(n.key for n in records.failed_last_time(plan.missing))
        if skipped:
            first, later = plan.split()
    if skip_failed and plan.items and settings.get("ledger"):
        steps = items_rows.Steps(Lineages().id, home)
        skipped_items = items_rows.skip_failed(plan.families, steps, records.where)
    expanding.check(plan)
    outcomes: dict[str, Outcome | None] = {}  # None: skipped, with load=True
    report = Report()
    requested = {n.key for n in nodes}
    done = sum(key in requested for key in plan.done)  # "already done", as in the summary
    wanted = {id(f): f for f in families}
    plain_done = done
    done += sum(plan.families[f].count(DONE) for f in wanted.values())
    items = plan.items
    if plan.missing or expanding.pending or items:
        ledger = (
            Ledger(plan.missing, families=plan.families, rewrites=plan.rewrites)
            if settings.get("ledger")
            else None
        )
        ended = "finished"
        try:
            if ledger is not None:
                ledger.start()  # before anything runs: what a crash would leave unrecorded
            with (
                resumed(),  # the tasks' own code: the usual garbage collection
                select(scheduler) as executor,
                Progress(len(plan.missing) + items, done + expanding.done, progress) as bar,
            ):
                observers = Observers((bar, report, ledger))
                with expanding.streaming(executor, observers, keep_going, kwargs) as execute:
                    size = int(settings.get("batch-size"))

                    def run_nodes(part: Plan) -> None:
                        batches = part.batches(size, outcomes)
                        for finished in executor.execute_batches(batches, execute, keep_going):
                            outcomes.update(finished)
                            if ledger is not None:
                                ledger.flush()

                    run_nodes(first)
                    heard = _Heard(plan.awaited)
                    if items:
                        shared: Mapping[str, Any] = ChainMap(outcomes, plan.done)  # type: ignore[arg-type]
                        told = Observers((observers, heard)) if plan.awaited else observers
                        executor.items(plan, shared, told, keep_going, **kwargs)
                        if ledger is not None:
                            ledger.flush()
                    if later.missing:
                        later, left = later.without(heard.unheard())  # items left alone
                        skipped.extend(left)
                        later.done = ChainMap(heard.outcomes, outcomes, plan.done)  # type: ignore[arg-type]
                        run_nodes(later)
                outcomes.update(expanding.outcomes)
                bar.found(done + expanding.done)  # with what the expansions found done
        except Exception as exc:  # no keep-going: the first failure, raised
            _record_raised(exc, plan.missing, ledger)
            ended = "stopped"
            raise
        except KeyboardInterrupt:
            ended = "interrupted"
            saved = _written(plan.missing, report.tally.ran)
            print(
                f"pipex: interrupted; {saved:,} task(s) saved their targets. "
                "Rerun to continue from there.",
                file=sys.stderr,
            )
            raise
        finally:
            if ledger is not None:
                ledger.close(ended)
    seconds = time.perf_counter() - start
    summary = report.summary(
        len(requested) + expanding.requested + sum(len(f) for f in wanted.values()),
        done + expanding.done,
        seconds,
        reused=len(plan.done) - plain_done,
        skipped=len(skipped) + skipped_items,
    )
    logger.info("%s", summary)
    error = report.error(summary)
    if error is not None:
        raise error
    outcomes.update(plan.done)
    for node in skipped:
        outcomes[node.key] = None if load else node.target
    fill = _Outputs(outcomes, load, expanding.results)
    return Results((replace(arg, fill) for arg in args), summary, (n.target for n in skipped))


def _written(missing: list[Node], reported: int) -> int:
    """How many of the ``missing`` targets are written now: tasks that finished may not all
    have been reported when the run was interrupted (``reported`` if the store cannot say)."""
    try:
        return sum(exists_many([node.target for node in missing]))
    except Exception:  # the store cannot be asked now: what was reported
        return reported


def _record_raised(exc: Exception, missing: list[Node], ledger: Ledger | None) -> None:
    """Give the ledger the failure of the task that raised ``exc``, if it says which."""
    key = raised_by(exc)
    if ledger is None or key is None:
        return
    for node in missing:
        if node.key == key:
            text = "".join(traceback.format_exception(exc))
            ledger.record(key, Failure(key, node.target, exc, text))
            return


def _steps_read(plan: Plan, later: Plan) -> bool:
    """Whether a mapped step with items to run reads one of the ``later`` nodes (those that
    read items of mapped steps: its batches would need what runs after them): rare; then
    such items run as plain nodes."""
    after = {node.key for node in later.missing}
    running = [family for family, states in plan.families.items() if missing_count(states)]
    return any(dep.key in after for family in running for dep in family.deps)


class _Heard:
    """The outcomes of the :attr:`Plan.awaited` items, as the batches report them."""

    __slots__ = ("outcomes", "wanted")

    def __init__(self, wanted: Mapping[str, Any]) -> None:
        self.wanted = wanted
        self.outcomes: dict[str, Outcome] = {}

    def record(self, key: str, outcome: Outcome) -> None:
        if key in self.wanted:
            self.outcomes[key] = outcome

    def unheard(self) -> list[str]:
        """The awaited items that did not run (left alone by ``skip_failed``)."""
        return [key for key in self.wanted if key not in self.outcomes]


class _Roots(Collect):
    """Collects the nodes, and the expansions, among :func:`compute`'s arguments."""

    __slots__ = ("expansions", "mapped")

    def __init__(self, found: list[Node]) -> None:
        super().__init__(found)
        self.expansions: list[Expansion] = []
        self.mapped: list[Mapped] = []

    def __call__(self, value: Any) -> None:
        if type(value) is Expansion:
            self.expansions.append(value)
        elif type(value) is Mapped:
            self.mapped.append(value)
        else:
            super().__call__(value)


class _Outputs:
    """Replaces each node by its target (or, with ``load``, its data), and each expansion
    by what its ``fn`` returned, nodes replaced the same way (``None`` if it did not run)."""

    __slots__ = ("expanded", "load", "outcomes")

    def __init__(self, outcomes: dict[str, Any], load: bool, expanded: dict[str, Any]) -> None:
        self.outcomes = outcomes
        self.load = load
        self.expanded = expanded

    def __call__(self, value: Any) -> Any:
        if type(value) is Expansion:
            result = self.expanded.get(value.key)
            return result if result is None or not self.load else replace(result, self._data)
        if type(value) is Mapped:
            targets = Targets(value.family)
            return [self._data(t) for t in targets] if self.load else targets
        if not isinstance(value, Node):
            return value
        return self._data(self.outcomes[value.key], value.key)

    def _data(self, target: Any, key: str | None = None) -> Any:
        if not isinstance(target, Target) or not self.load:
            return target
        try:
            return target.load()
        except Exception as exc:
            raise StoreError(
                f"cannot load the output of task {key or target.path} from {target}: "
                f"{type(exc).__name__}: {exc}. If that file is damaged, delete it and rerun: "
                "the task runs again."
            ) from scrub(exc, target.store.location(target.path))
