"""``pipex.compute``: resolve on the client, run only what is missing, report every failure."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import dask
import dask.threaded
from dask.base import get_scheduler

from pipex import config
from pipex.exceptions import PipelineError
from pipex.execution import CONTAINERS, Failure, NotRun
from pipex.graph import resolve, run_token, task_key
from pipex.targets import Target
from pipex.task import Node


def compute(
    *args: Any,
    load: bool = False,
    scheduler: Any = None,
    keep_going: bool | None = None,
    **kwargs: Any,
) -> tuple[Any, ...]:
    """Compute nodes, running only what is missing below them. Returns a tuple like
    ``dask.compute``: a :class:`Target` per node (its data with ``load=True``).

    Lists, tuples and dicts of nodes are traversed; other values pass through. ``scheduler``
    is as in dask (``"threads"``, ``"sync"``, ``"processes"``, a ``distributed.Client``);
    by default the active distributed client if there is one, else dask's threads.
    With ``keep_going`` (default: ``pipex.keep-going``, true) independent work goes on
    after a failure and one :class:`PipelineError` lists every failed and unrun task at the
    end; otherwise the first failure is raised at once. Extra keywords go to the scheduler.
    """
    nodes: list[Node] = []
    for arg in args:
        _collect(arg, nodes)
    if not nodes:
        return args
    if keep_going is None:
        keep_going = bool(config.get("keep-going"))
    plan = resolve(nodes)
    outcomes: dict[str, Any] = dict(plan.done)
    if plan.missing:
        run = run_token()
        keys = [task_key(node, run) for node in plan.missing]
        schedule = _scheduler(scheduler)
        results = schedule(plan.graph(keep_going, run), keys, **kwargs)
        outcomes.update((node.key, r) for node, r in zip(plan.missing, results, strict=True))
        _raise_failures(outcomes)
    return tuple(_repack(arg, outcomes, load) for arg in args)


def _collect(value: Any, found: list[Node]) -> None:
    if isinstance(value, Node):
        found.append(value)
    elif type(value) in CONTAINERS:
        for v in value:
            _collect(v, found)
    elif type(value) is dict:
        for v in value.values():
            _collect(v, found)


def _repack(value: Any, outcomes: dict[str, Any], load: bool) -> Any:
    if isinstance(value, Node):
        target: Target = outcomes[value.key]
        return target.load() if load else target
    if type(value) in CONTAINERS:
        return type(value)(_repack(v, outcomes, load) for v in value)
    if type(value) is dict:
        return {k: _repack(v, outcomes, load) for k, v in value.items()}
    return value


def _scheduler(scheduler: Any) -> Callable[..., Sequence[Any]]:
    """dask's choice of scheduler, without importing distributed when nobody uses it."""
    no_choice = scheduler is None and dask.config.get("scheduler", None) is None
    if no_choice and "distributed" not in sys.modules:
        return dask.threaded.get
    return get_scheduler(scheduler=scheduler, cls=Node)


def _raise_failures(outcomes: dict[str, Any]) -> None:
    failed = [o for o in outcomes.values() if isinstance(o, Failure)]
    if not failed:
        return
    not_run = [o for o in outcomes.values() if isinstance(o, NotRun)]
    lines = [f"{len(failed)} pipex task(s) failed; {len(not_run)} not run: an input failed."]
    lines += [f"  failed: {f.key} (target {f.target}): {_one_line(f.exception)}" for f in failed]
    lines += [f"  not run: {n.key} (needs {', '.join(sorted(n.causes))})" for n in not_run]
    lines.append("Targets of these tasks were not written; rerun to run only them.")
    exceptions = [_annotated(f) for f in failed]
    raise PipelineError("\n".join(lines), exceptions, failed=failed, not_run=not_run)


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


def _one_line(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(exc)).strip().splitlines()
    return text[-1] if text else type(exc).__name__
