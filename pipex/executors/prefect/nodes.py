"""``PIPEX=prefect+cache``, granularity ``node``: one Prefect task run per missing node.

Runs are submitted together, in dependency order, and named from their targets. Each
receives its inputs' Targets and waits for the runs that write them; Prefect's caching and
result persistence are off for them.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from pipex.core import worker
from pipex.core.graph import call_of
from pipex.core.outcomes import Failure, NotRun, Outcome, mark_raised, settle
from pipex.core.plan import Plan
from pipex.executors.base import Observer
from pipex.executors.prefect.logs import logs_to
from pipex.executors.prefect.recorded import wait_recorded
from pipex.executors.prefect.runtime import (
    NO_CACHE,
    FlowRunContext,
    Held,
    get_run_logger,
    prefect,
    retries_of,
)
from pipex.executors.prefect.submit import Run, finished, submit_all

_TRACEBACK = "_pipex_traceback"  # attribute carrying the traceback text across processes


def run_nodes(plan: Plan, observer: Observer, keep_going: bool) -> dict[str, Outcome]:
    """One Prefect task run per missing node, in dependency order; wait for all of them."""
    order = plan.order()
    names = run_names(order)
    tasks: dict[int, Any] = {}
    position: dict[str, int] = {}
    runs: list[Run] = []
    for node in order:
        prefect_task = tasks.get(id(node.task))
        if prefect_task is None:
            prefect_task = tasks[id(node.task)] = _node_task(node.task)
        parameters = {
            "run_name": names[node.key],
            "call": Held(call_of(node, plan.rewrite(node.key))),
            "inputs": [dep.target for dep in node.deps],  # Targets are known before running
        }
        wait_for = [position[dep.key] for dep in node.deps if dep.key in position]
        position[node.key] = len(runs)
        runs.append(Run(prefect_task, parameters, wait_for))
    context = FlowRunContext.get()
    assert context is not None  # the pipex flow runs this
    futures = submit_all(context.task_runner, runs)
    by_run = {future.task_run_id: node for future, node in zip(futures, order, strict=True)}
    outcomes: dict[str, Outcome] = {}
    unsettled: dict[str, NotRun] = {}  # reported once the failures they waited for are known
    final: dict[Any, str] = {}  # task run id -> its final state's name
    for future, state in finished(futures):
        node = by_run[future.task_run_id]
        final[future.task_run_id] = state.name
        outcome = _outcome(node, state)
        if isinstance(outcome, NotRun):
            unsettled[node.key] = outcome
            continue
        outcomes[node.key] = outcome
        observer.record(node.key, outcome)
        if isinstance(outcome, Failure) and not keep_going:
            exc = outcome.exception
            mark_raised(exc, node.key, node.target)
            raise exc
    settle(order, outcomes, unsettled)
    for key in unsettled:
        observer.record(key, outcomes[key])
    wait_recorded(final, get_run_logger())
    return outcomes


def _node_task(task: Any) -> Any:
    """The Prefect task that runs nodes of ``task``: named after it, Prefect caching off."""
    # prefect.task's overloads omit its fn-and-options form, which it runs
    return prefect.task(  # type: ignore[call-overload]
        _run_node,
        name=task.name,
        description=task.__doc__,
        task_run_name="{run_name}",
        cache_policy=NO_CACHE,
        persist_result=False,
        retries=retries_of(task),
    )


def _run_node(run_name: str, call: Held, inputs: list[Any]) -> Any:
    """Body of a node's Prefect task run: run it as pipex does; a failure raises."""
    with logs_to(get_run_logger()):
        outcome = worker.execute_call(call.value, True, *inputs)
    if isinstance(outcome, Failure):
        exc = outcome.exception
        with suppress(AttributeError):  # read back by the flow to report where it failed
            setattr(exc, _TRACEBACK, outcome.traceback)
        raise exc
    return outcome


def _outcome(node: Any, state: Any) -> Outcome:
    """A pipex outcome from a node's final Prefect state."""
    if state.is_completed():
        return node.target
    if state.is_failed() or state.is_crashed():
        try:
            exc = state.result(raise_on_failure=False)
        except Exception as error:
            exc = error
        if not isinstance(exc, BaseException):
            exc = RuntimeError(f"Prefect task run {state.name}: {state.message}")
        text = getattr(exc, _TRACEBACK, None) or f"(Prefect: {state.name}: {state.message})"
        return Failure(node.key, node.target, exc, text)
    return NotRun(node.key, node.target)  # NotReady: an upstream run did not complete


def run_names(nodes: Sequence[Any]) -> dict[str, str]:
    """Task-run names from targets: ``<funcname>-<file stem>`` (``gray-page-001``).

    Names that would be shared use the whole target path without its suffix instead.
    """

    def stem(path: str) -> str:
        return posixpath.splitext(posixpath.basename(path))[0]

    names = {node.key: f"{node.task.name}-{stem(node.target.path)}" for node in nodes}
    counts = Counter(names.values())
    for node in nodes:
        if counts[names[node.key]] > 1:
            names[node.key] = f"{node.task.name}-{posixpath.splitext(node.target.path)[0]}"
    return names
