"""``PIPEX=prefect+cache``, granularity ``graph``: the missing graph as one task run per
batch (``pipex.batch-size`` nodes; and one per ``pipex.expand`` that adds nodes).

Much less overhead per node, a few task runs in Prefect's UI. The task run runs in the flow
process: it hands the graph to the cluster of the flow's ``DaskTaskRunner`` through the
runner's own client (or computes it with dask's threads under another task runner), follows
the tasks as they finish as ``PIPEX=cache`` does, and reports each outcome as it arrives, to
the run's observers and to its run logger (failures at once, counts every 10%); each task's
own log records go to that task run too. Each is named after its steps and the slice of the
run's missing nodes it holds (:func:`batch_name`). The executor starts the next batch's task
run while one runs (:mod:`pipex.executors.ahead`); on the cluster, the earlier batch's tasks
go first.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import dask.threaded
from dask.system import CPU_COUNT
from dask.task_spec import Task

from pipex import settings
from pipex.core import fusion
from pipex.core.bundles import bundles
from pipex.core.graph import is_call, is_chain, new_run_id, task_key, to_dask
from pipex.core.outcomes import Failure, NotRun, Outcome, Tally, one_line
from pipex.core.plan import Plan
from pipex.executors.base import Observer
from pipex.executors.distributed.follow import Follow
from pipex.executors.local import Reporting
from pipex.executors.prefect.nodes import run_names
from pipex.executors.prefect.recorded import wait_recorded
from pipex.executors.prefect.runtime import (
    NO_CACHE,
    DaskTaskRunner,
    Failed,
    FlowRunContext,
    Held,
    get_run_logger,
    prefect,
)
from pipex.executors.prefect.task_logs import LogContext, run_logged
from pipex.redact import redact

GRAPH_TASK_NAME = "pipex-graph"


def run_graph(
    plan: Plan,
    observer: Observer,
    keep_going: bool,
    start: int = 0,
    recording: dict[uuid.UUID, str] | None = None,
) -> dict[str, Outcome]:
    """The missing graph of ``plan`` (one batch, the run's missing nodes ``start`` on) as one
    Prefect task run in this process; outcomes by key, each reported as it arrives.

    The temporary server is waited for until it has recorded the task run, or, with
    ``recording``, the task run's final state is added there for the caller to wait for
    (once, for all its batches)."""
    order = plan.order()
    name = batch_name(steps_of(order), start, start + len(order))
    # prefect.task's overloads omit its fn-and-options form, which it runs
    graph_task = prefect.task(  # type: ignore[call-overload]
        _compute_graph,
        name=GRAPH_TASK_NAME,
        task_run_name="{name}",
        cache_policy=NO_CACHE,
        persist_result=False,
    )
    batch = _Batch(plan, observer, keep_going, _cluster_client(), start)
    state = graph_task(name=name, batch=Held(batch), return_state=True)
    if recording is None:
        wait_recorded({state.state_details.task_run_id: state.name}, get_run_logger())
    else:
        recording[state.state_details.task_run_id] = state.name
    try:
        results = state.result(raise_on_failure=False)
    except Exception as exc:
        results = exc
    if not isinstance(results, dict):  # it raised: keep_going is off, or the run crashed
        if isinstance(results, BaseException):
            raise results
        raise RuntimeError(f"the task run {name} ended {state.name}: {state.message}")
    return results


def batch_name(steps: Sequence[str], first: int, stop: int) -> str:
    """A batch's task-run name: its first and last step and which of the run's missing nodes
    it holds, as a slice (``gray..small [0:20000]``; one step: ``gray [0:20000]``)."""
    label = steps[0] if len(steps) == 1 else f"{steps[0]}..{steps[-1]}"
    return f"{label} [{first}:{stop}]"


def steps_of(nodes: Sequence[Any]) -> list[str]:
    """The task names of ``nodes``, each once, in the order they first appear."""
    return list(dict.fromkeys(node.task.name for node in nodes))


class _Batch:
    """What the graph task run computes: the plan, who hears of each outcome, the dask
    client of the flow's task runner (``None``: dask's threads), and where the batch starts
    among the run's missing nodes. Stays in this process."""

    def __init__(
        self, plan: Plan, observer: Observer, keep_going: bool, client: Any, start: int
    ) -> None:
        self.plan = plan
        self.observer = observer
        self.keep_going = keep_going
        self.client = client
        self.start = start


def _compute_graph(name: str, batch: Held) -> Any:
    """Body of the graph task run: compute the pruned dask graph, reporting each outcome to
    the run's observer and its log; each node's outcome, by key."""
    todo: _Batch = batch.value
    run_logger = get_run_logger()
    given = getattr(run_logger, "extra", None) or {}  # a task run's: a LoggerAdapter's
    extra = {k: v for k, v in given.items() if isinstance(v, (str, int, float))}
    report = _RunLog(run_logger, run_names(todo.plan.missing), todo.observer)
    run_logger.info("pipex: running %d missing task(s) as one dask graph", report.total)
    outcomes = _computed(todo, todo.plan, report, extra, bundle=True)
    report.finish()
    failed = [r for r in outcomes.values() if isinstance(r, Failure)]
    if failed:
        not_run = sum(isinstance(r, NotRun) for r in outcomes.values())
        return Failed(
            message=f"{len(failed)} of {len(outcomes)} pipex task(s) failed, {not_run} not run: "
            + ", ".join(f.key for f in failed[:5])
            + (" ..." if len(failed) > 5 else ""),
            data=outcomes,
        )
    return outcomes


def _computed(
    todo: _Batch, plan: Plan, report: _RunLog, extra: dict[str, Any], bundle: bool
) -> dict[str, Outcome]:
    """``plan``'s graph computed on the cluster (or dask's threads); each node's outcome.
    With ``bundle``, independent chains share tasks; on a cluster, the chains of a bundle
    lost as a whole then run again, each in a task of its own."""
    client = todo.client
    run_id = new_run_id()
    tasks = fusion.chains(plan) if todo.keep_going and settings.get("fuse") else None
    if tasks and bundle:
        tasks = bundles(tasks, CPU_COUNT if client is None else sum(client.nthreads().values()))
    chains = tasks or [[node] for node in plan.missing]
    steps = {task_key(chain, run_id): chain for chain in chains}
    dsk = to_dask(plan, todo.keep_going, run_id, chains=tasks, timed=client is None)
    dsk = {key: _logging(value, extra) for key, value in dsk.items()}
    if client is None:
        with Reporting(report, steps):
            results = dask.threaded.get(dsk, list(steps))
        return {
            node.key: outcome
            for key, result in zip(steps, results, strict=True)
            for node, outcome, _ in fusion.outcomes(steps[key], result)
        }
    # batches sent while others run: the earlier batch's tasks first (graphs sent within
    # dask's fifo-timeout of each other would otherwise be interleaved)
    follow = Follow(client, steps, plan, report)  # before: it times the tasks from now
    futures = client.get(dsk, list(steps), sync=False, priority=-todo.start)
    outcomes = follow.run(futures, todo.keep_going)
    again = follow.again(plan)
    if again is not None:
        outcomes.update(_computed(todo, again, report, extra, bundle=False))
    return outcomes


def _cluster_client() -> Any:
    """The dask client of the flow run's ``DaskTaskRunner`` (in this process), else ``None``."""
    context = FlowRunContext.get()
    runner = getattr(context, "task_runner", None)
    if isinstance(runner, DaskTaskRunner):
        return runner.client
    return None


class _RunLog:
    """Reports a graph's progress to a run logger: failures at once, counts every 10%.

    An observer that passes each outcome on to ``then`` (the run's observers); ``names``
    gives each node key its task-run name.
    """

    def __init__(self, run_logger: Any, names: dict[str, str], then: Observer) -> None:
        self.run_logger = run_logger
        self.names = names
        self.then = then
        self.timing = getattr(then, "timing", None)
        self.total = len(names)
        self.tally = Tally()
        self._step = max(1, self.total // 10)
        self._lock = threading.Lock()

    def record(self, key: str, outcome: Any) -> None:
        self.then.record(key, outcome)
        name = self.names.get(key, key)
        with self._lock:
            self.tally.add(outcome)
            if isinstance(outcome, Failure):
                self.run_logger.error(  # every part may quote a URL: credentials hidden
                    "pipex: %s failed (target %s): %s\n%s",
                    redact(name),
                    outcome.target,
                    redact(one_line(outcome.exception)),
                    redact(outcome.traceback.rstrip()),
                )
            elif isinstance(outcome, NotRun):
                self.run_logger.warning("pipex: %s not run: an input failed", name)
            else:
                self.run_logger.debug("pipex: %s ran", name)
            done = self.tally.total
            if done % self._step == 0 and done < self.total:
                self.run_logger.info("pipex: %d/%d finished (%s)", done, self.total, self.tally)

    def finish(self) -> None:
        self.run_logger.info("pipex: %d/%d finished (%s)", self.total, self.total, self.tally)


def _logging(value: Any, extra: dict[str, Any]) -> Any:
    """A graph task that sends its function's log records to the graph's task run."""
    if is_call(value):
        return Task(value.key, run_logged, LogContext(extra), *value.args)
    if is_chain(value):
        step = functools.partial(run_logged, LogContext(extra))
        return Task(value.key, value.func, *value.args, **{**value.kwargs, "step": step})
    return value
