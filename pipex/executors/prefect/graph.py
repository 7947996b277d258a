"""``PIPEX=prefect+cache``, granularity ``graph``: the missing graph as one task run per
batch (``pipex.batch-size`` nodes; and one per ``pipex.expand`` that adds nodes).

Much less overhead per node, a few task runs in Prefect's UI. The run computes the graph with
dask on the task runner's cluster (or dask's threads) and reports progress and failures
through its run logger; each task's own log records go to that run too.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import dask.threaded
from dask.task_spec import Task

from pipex import settings
from pipex.core import fusion, worker
from pipex.core.graph import is_call, is_chain, new_run_id, task_key, to_dask
from pipex.core.outcomes import Failure, NotRun, Outcome, Tally, one_line
from pipex.core.plan import Plan
from pipex.core.worker import Call
from pipex.executors.base import Observer
from pipex.executors.local import Reporting
from pipex.executors.prefect.logs import logs_to
from pipex.executors.prefect.nodes import run_names
from pipex.executors.prefect.runtime import (
    NO_CACHE,
    Failed,
    Held,
    PrefectLogAdapter,
    get_logger,
    get_run_logger,
    prefect,
)
from pipex.redact import redact

GRAPH_TASK_NAME = "pipex-graph"


def run_graph(plan: Plan, observer: Observer, keep_going: bool) -> dict[str, Outcome]:
    """The missing graph of ``plan`` (one batch) as one Prefect task run; outcomes by key."""
    run_id = new_run_id()
    tasks = fusion.chains(plan) if keep_going and settings.get("fuse") else None
    chains = tasks or [[node] for node in plan.missing]
    keys = [task_key(chain, run_id) for chain in chains]
    names = run_names(plan.missing)
    dsk = to_dask(plan, keep_going, run_id, chains=tasks)
    steps = {key: fusion.members(chain) for key, chain in zip(keys, chains, strict=True)}
    graph = Held((dsk, steps, names))
    # prefect.task's overloads omit its fn-and-options form, which it runs
    graph_task = prefect.task(  # type: ignore[call-overload]
        _compute_graph,
        name=GRAPH_TASK_NAME,
        task_run_name=f"{GRAPH_TASK_NAME}-{len(plan.missing)}",
        cache_policy=NO_CACHE,
        persist_result=False,
    )
    future = graph_task.submit(graph=graph)
    future.wait()
    state = future.state
    try:
        results = state.result(raise_on_failure=False)
    except Exception as exc:
        results = exc
    if not isinstance(results, dict):  # it raised: keep_going is off, or the run crashed
        if isinstance(results, BaseException):
            raise results
        raise RuntimeError(f"the {GRAPH_TASK_NAME} task run ended {state.name}: {state.message}")
    for key, outcome in results.items():
        observer.record(key, outcome)
    return results


def _compute_graph(graph: Held) -> Any:
    """Body of the graph task run: compute the pruned dask graph, reporting through the log;
    each node's outcome, by key."""
    dsk, steps, names = graph.value
    run_logger = get_run_logger()
    given = getattr(run_logger, "extra", None) or {}  # a task run's: a LoggerAdapter's
    extra = {k: v for k, v in given.items() if isinstance(v, (str, int, float))}
    dsk = {key: _logging(value, extra) for key, value in dsk.items()}
    report = _RunLog(run_logger, names)
    run_logger.info("pipex: running %d missing task(s) as one dask graph", len(names))
    results = _compute(dsk, steps, report)
    report.finish()
    failed = [r for r in results.values() if isinstance(r, Failure)]
    if failed:
        not_run = sum(isinstance(r, NotRun) for r in results.values())
        return Failed(
            message=f"{len(failed)} of {len(results)} pipex task(s) failed, {not_run} not run: "
            + ", ".join(f.key for f in failed[:5])
            + (" ..." if len(failed) > 5 else ""),
            data=results,
        )
    return results


def _compute(dsk: dict[Any, Any], steps: dict[Any, list[Any]], report: _RunLog) -> dict[str, Any]:
    """Compute the graph on the dask cluster this runs on, else with dask's threads; each
    node's outcome, by key."""
    keys = list(steps)
    client = _worker_client()
    if client is None:
        with Reporting(report, steps):
            results = dask.threaded.get(dsk, keys)
    else:
        import distributed

        with client as c:
            futures = c.get(dsk, keys, sync=False)
            for future in distributed.as_completed(futures):
                for node, outcome, _ in fusion.outcomes(steps[future.key], future.result()):
                    report.record(node.key, outcome)
            results = c.gather(futures)
    return {
        node.key: outcome
        for key, result in zip(keys, results, strict=True)
        for node, outcome, _ in fusion.outcomes(steps[key], result)
    }


def _worker_client() -> Any:
    """A ``worker_client`` context when running in a dask worker, else ``None``."""
    try:
        from distributed import get_worker, worker_client
    except ImportError:
        return None
    try:
        get_worker()
    except ValueError:
        return None
    return worker_client()


class _RunLog:
    """Reports a graph's progress to a run logger: failures at once, counts every 10%.

    An observer; ``names`` gives each node key its task-run name.
    """

    def __init__(self, run_logger: Any, names: dict[str, str]) -> None:
        self.run_logger = run_logger
        self.names = names
        self.total = len(names)
        self.tally = Tally()
        self._step = max(1, self.total // 10)
        self._lock = threading.Lock()

    def record(self, key: str, outcome: Any) -> None:
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


class _LogContext:
    """The ids that route a log record to one Prefect task run (opaque to dask)."""

    __slots__ = ("extra",)

    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra

    def __reduce__(self) -> tuple[Any, ...]:
        return (_LogContext, (self.extra,))


def _logging(value: Any, extra: dict[str, Any]) -> Any:
    """A graph task that sends its function's log records to the graph's task run."""
    if is_call(value):
        return Task(value.key, _run_logged, _LogContext(extra), *value.args)
    if is_chain(value):
        step = functools.partial(_run_logged, _LogContext(extra))
        return Task(value.key, value.func, *value.args, **{**value.kwargs, "step": step})
    return value


def _run_logged(context: _LogContext, call: Call, keep_going: bool, *inputs: Outcome) -> Any:
    run_logger = PrefectLogAdapter(get_logger("prefect.task_runs"), extra=context.extra)
    with logs_to(run_logger):
        return worker.execute_call(call, keep_going, *inputs)
