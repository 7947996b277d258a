"""Prefect 3 integration: ``PIPEX=prefect`` and ``PIPEX=prefect+cache``.

Only these modes import this module, so core pipex never imports Prefect.

- ``PIPEX=prefect``: a pipex task call is a plain Prefect task run (pipex's own options are
  ignored) and :func:`pipex.flow` is :func:`prefect.flow`.
- ``PIPEX=prefect+cache``: :func:`pipex.flow` is a Prefect flow whose task runner defaults to
  ``prefect_dask.DaskTaskRunner``. Inside its run, :func:`pipex.compute` resolves the pipex
  graph as in cache mode and runs only what is missing, on the flow's task runner:

  - ``pipex.prefect.granularity: node`` (default): one Prefect task run per missing node,
    named from its target, submitted in dependency order. Each receives its inputs' Targets
    and waits for the runs that write them; Prefect's caching is off for these runs.
  - ``pipex.prefect.granularity: graph``: one Prefect task run that computes the whole
    missing graph with dask on the task runner's cluster, and reports progress and failures
    through its run logger. Much less overhead per node, one task run in Prefect's UI.

  Finished nodes create no task run. Outside a flow run, ``prefect+cache`` is ``cache``.
"""

from __future__ import annotations

import logging
import posixpath
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import dask
import dask.config
import dask.threaded
from dask.callbacks import Callback
from dask.task_spec import Task

from pipex import execution
from pipex.exceptions import ModeError
from pipex.execution import Call, Failure, NotRun, Outcome
from pipex.graph import Plan, run_token, task_key
from pipex.progress import Progress
from pipex.report import one_line
from pipex.task import Node, TaskFunction

try:
    import prefect
    from prefect.cache_policies import NO_CACHE
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.futures import as_completed
    from prefect.logging import get_run_logger
    from prefect.logging.loggers import PrefectLogAdapter, get_logger
    from prefect.states import Failed
    from prefect_dask import DaskTaskRunner
except ImportError as exc:
    raise ImportError(
        "the Prefect modes of pipex (PIPEX=prefect, PIPEX=prefect+cache) need Prefect 3 and "
        f"prefect-dask, which could not be imported ({exc}): pip install 'dask-pipex[prefect]'"
    ) from exc

try:  # what prefect-dask's own submission uses; without it, pipex submits through it
    from types import SimpleNamespace

    from distributed import Future as DaskFuture
    from prefect.context import AssetContext, serialize_context
    from prefect.task_engine import run_task_sync
    from prefect.utilities.engine import collect_task_run_inputs_sync
    from prefect_dask.task_runners import PrefectDaskFuture

    _fast_dask: Any = SimpleNamespace(
        AssetContext=AssetContext,
        DaskFuture=DaskFuture,
        PrefectDaskFuture=PrefectDaskFuture,
        collect_task_run_inputs_sync=collect_task_run_inputs_sync,
        run_task_sync=run_task_sync,
        serialize_context=serialize_context,
    )
except ImportError:  # pragma: no cover - other Prefect versions
    _fast_dask = None

logger = logging.getLogger("pipex")

GRANULARITIES = ("node", "graph")
GRAPH_TASK_NAME = "pipex-graph"
_PLAIN_TASK = "_pipex_prefect_task"  # attribute caching a TaskFunction's plain Prefect task
_TRACEBACK = "_pipex_traceback"  # attribute carrying the traceback text across processes


def granularity() -> str:
    """``pipex.prefect.granularity`` from ``dask.config``: ``node`` (default) or ``graph``."""
    value = dask.config.get("pipex.prefect.granularity", default="node")
    if value not in GRANULARITIES:
        raise ModeError(
            f"pipex.prefect.granularity={value!r} is not one of {', '.join(GRANULARITIES)}: "
            "'node' runs each missing node as its own Prefect task run, 'graph' runs the "
            "whole missing graph as one Prefect task run"
        )
    return value


def in_flow_run() -> bool:
    """Whether the caller is a Prefect flow run's own code (not inside one of its tasks)."""
    return FlowRunContext.get() is not None and TaskRunContext.get() is None


# -- PIPEX=prefect and pipex.flow ------------------------------------------------------------


def call_as_task(task: TaskFunction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run one call of a pipex task as a plain Prefect task (``PIPEX=prefect``)."""
    plain = task.__dict__.get(_PLAIN_TASK)
    if plain is None:
        plain = prefect.task(task.fn, name=task.name, retries=_retries(task))
        setattr(task, _PLAIN_TASK, plain)
        logger.debug(
            "PIPEX=prefect: task %s runs as a plain Prefect task; its pipex options are "
            "ignored (target=%r, store=%r, save=%r, long_running=%r)",
            task.name,
            task._spec,
            task.store,
            task.save,
            getattr(task, "long_running", False),
        )
    return plain(*args, **kwargs)


def _retries(task: TaskFunction) -> int:
    """``@pipex.task(retries=N)``: Prefect retries the task run up to N times."""
    return int(getattr(task, "retries", 0) or 0)


def as_flow(fn: Callable[..., Any], options: Mapping[str, Any], mode: str) -> Any:
    """``fn`` as a Prefect flow; in ``prefect+cache`` its task runner defaults to Dask's."""
    options = dict(options)
    if mode == "prefect+cache":
        options.setdefault("task_runner", DaskTaskRunner())
    return prefect.flow(fn, **options)


# -- PIPEX=prefect+cache: running a plan ---------------------------------------------------


def execute(plan: Plan, keep_going: bool, progress: Progress, **kwargs: Any) -> dict[str, Outcome]:
    """Run a plan's missing nodes on the current flow run's task runner; outcomes by key."""
    if kwargs:
        logger.debug("PIPEX=prefect+cache: scheduler options %s are not used", sorted(kwargs))
    if granularity() == "graph":
        return _run_graph(plan, keep_going, progress)
    return _run_nodes(plan, keep_going, progress)


class _Held:
    """Hands a value to a Prefect task without Prefect or dask looking inside it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Held, (self.value,))


def _run_nodes(plan: Plan, keep_going: bool, progress: Progress) -> dict[str, Outcome]:
    """One Prefect task run per missing node, in dependency order; wait for all of them."""
    order = dependency_order(plan.missing)
    names = run_names(order)
    calls = _calls(plan)
    submit = _submitter(FlowRunContext.get().task_runner)
    tasks: dict[int, Any] = {}
    futures: dict[str, Any] = {}
    by_run: dict[Any, Node] = {}
    for node in order:
        prefect_task = tasks.get(id(node.task))
        if prefect_task is None:
            prefect_task = tasks[id(node.task)] = _node_task(node.task)
        parameters = {
            "run_name": names[node.key],
            "call": _Held(calls[node.key]),
            "inputs": [dep.target for dep in node.deps],  # Targets are known before running
        }
        wait_for = [futures[dep.key] for dep in node.deps if dep.key in futures]
        futures[node.key] = submit(prefect_task, parameters, wait_for)
        by_run[futures[node.key].task_run_id] = node
    outcomes: dict[str, Outcome] = {}
    for future in as_completed(list(futures.values())):
        future.wait()
        node = by_run[future.task_run_id]
        outcome = outcomes[node.key] = _outcome(node, future.state)
        progress.advance(outcome)
        if isinstance(outcome, Failure) and not keep_going:
            exc = outcome.exception
            exc.add_note(f"pipex task {node.key} failed; target {node.target} was not written")
            raise exc
    return _with_causes(order, outcomes)


def _submitter(task_runner: Any) -> Callable[[Any, dict[str, Any], list[Any]], Any]:
    """How to submit one task run to ``task_runner``: ``submit(task, parameters, wait_for)``.

    For a ``DaskTaskRunner``, as prefect-dask does it, but with Prefect's context serialized
    once for all of a compute's task runs (prefect-dask serializes it, settings included, for
    every one: ~60 ms each here) and without dask hashing each run's arguments. Any other
    task runner: ``task.submit``.
    """
    if isinstance(task_runner, DaskTaskRunner) and _fast_dask is not None:
        return _DaskSubmitter(task_runner.client)

    def submit(task: Any, parameters: dict[str, Any], wait_for: list[Any]) -> Any:
        return task.submit(**parameters, wait_for=wait_for)

    return submit


class _DaskSubmitter:
    """Submits task runs to a ``DaskTaskRunner``'s client, reusing one serialized context."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.context = _fast_dask.serialize_context()

    def __call__(self, task: Any, parameters: dict[str, Any], wait_for: list[Any]) -> Any:
        fast = _fast_dask
        task_run_id = uuid.uuid4()
        dependencies = {
            name: fast.collect_task_run_inputs_sync(value, future_cls=fast.DaskFuture)
            for name, value in parameters.items()
        }
        context = dict(self.context)
        context["asset_context"] = fast.AssetContext.from_task_and_inputs(
            task=task, task_run_id=task_run_id, task_inputs=dependencies, copy_to_child_ctx=True
        ).serialize()
        future = self.client.submit(
            fast.run_task_sync,
            key=f"{parameters['run_name']}-{task_run_id.hex[:8]}",
            pure=False,
            task=task,
            task_run_id=task_run_id,
            parameters=parameters,
            wait_for=[f.wrapped_future for f in wait_for] or None,
            return_type="state",
            dependencies=dependencies,
            context=context,
        )
        return fast.PrefectDaskFuture(wrapped_future=future, task_run_id=task_run_id)


def _node_task(task: TaskFunction) -> Any:
    """The Prefect task that runs nodes of ``task``: named after it, Prefect caching off."""
    return prefect.task(
        _run_node,
        name=task.name,
        description=task.__doc__,
        task_run_name="{run_name}",
        cache_policy=NO_CACHE,
        persist_result=False,
        retries=_retries(task),
    )


def _run_node(run_name: str, call: _Held, inputs: list[Any]) -> Any:
    """Body of a node's Prefect task run: run it as pipex does; a failure raises."""
    node_call: Call = call.value
    with logs_to(get_run_logger()):
        outcome = execution.run(node_call, True, *inputs)
    if isinstance(outcome, Failure):
        exc = outcome.exception
        with suppress(AttributeError):  # read back by the flow to report where it failed
            setattr(exc, _TRACEBACK, outcome.traceback)
        raise exc
    return outcome


def _outcome(node: Node, state: Any) -> Outcome:
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


def _with_causes(order: Sequence[Node], outcomes: dict[str, Outcome]) -> dict[str, Outcome]:
    """Name, for each node that did not run, the failed nodes it waited for."""
    for node in order:
        outcome = outcomes[node.key]
        if not isinstance(outcome, NotRun):
            continue
        causes: set[str] = set()
        for dep in node.deps:
            upstream = outcomes.get(dep.key)
            if isinstance(upstream, Failure):
                causes.add(dep.key)
            elif isinstance(upstream, NotRun):
                causes.update(upstream.causes)
        outcomes[node.key] = NotRun(node.key, node.target, frozenset(causes))
    return outcomes


def dependency_order(nodes: Sequence[Node]) -> list[Node]:
    """``nodes`` with every node after the nodes of ``nodes`` it depends on."""
    keys = {node.key for node in nodes}
    seen: set[str] = set()
    order: list[Node] = []
    for root in nodes:
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node.key in seen:
                continue
            seen.add(node.key)
            stack.append((node, True))
            stack.extend((dep, False) for dep in node.deps if dep.key in keys)
    return order


def run_names(nodes: Sequence[Node]) -> dict[str, str]:
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


def _calls(plan: Plan) -> dict[str, Call]:
    """Each missing node's :class:`Call` (its upstream nodes as placeholders), by key."""
    dsk = plan.graph(keep_going=True)
    return {node.key: dsk[task_key(node)].args[0] for node in plan.missing}


# -- PIPEX=prefect+cache, granularity graph ------------------------------------------------


def _run_graph(plan: Plan, keep_going: bool, progress: Progress) -> dict[str, Outcome]:
    """The whole missing graph as one Prefect task run; outcomes by key."""
    run = run_token()
    keys = [task_key(node, run) for node in plan.missing]
    names = run_names(plan.missing)
    graph = _Held((plan.graph(keep_going, run), keys, [names[n.key] for n in plan.missing]))
    graph_task = prefect.task(
        _compute_graph,
        name=GRAPH_TASK_NAME,
        task_run_name=f"{GRAPH_TASK_NAME}-{len(keys)}",
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
    if not isinstance(results, list):  # it raised: keep_going is off, or the run crashed
        if isinstance(results, BaseException):
            raise results
        raise RuntimeError(f"the {GRAPH_TASK_NAME} task run ended {state.name}: {state.message}")
    for result in results:
        progress.advance(result)
    return {node.key: result for node, result in zip(plan.missing, results, strict=True)}


def _compute_graph(graph: _Held) -> Any:
    """Body of the graph task run: compute the pruned dask graph, reporting through the log."""
    dsk, keys, names = graph.value
    run_logger = get_run_logger()
    extra = {k: v for k, v in run_logger.extra.items() if isinstance(v, (str, int, float))}
    dsk = {key: _logging(value, extra) for key, value in dsk.items()}
    report = _Report(run_logger, dict(zip(keys, names, strict=True)))
    run_logger.info("pipex: running %d missing task(s) as one dask graph", len(keys))
    results = _compute(dsk, keys, report)
    report.finish()
    failed = [r for r in results if isinstance(r, Failure)]
    if failed:
        not_run = sum(isinstance(r, NotRun) for r in results)
        return Failed(
            message=f"{len(failed)} of {len(keys)} pipex task(s) failed, {not_run} not run: "
            + ", ".join(f.key for f in failed[:5])
            + (" ..." if len(failed) > 5 else ""),
            data=results,
        )
    return results


def _compute(dsk: dict[Any, Any], keys: list[Any], report: _Report) -> list[Outcome]:
    """Compute ``keys`` on the dask cluster this runs on, else with dask's threads."""
    client = _worker_client()
    if client is None:
        with _ReportCallback(report):
            return list(dask.threaded.get(dsk, keys))
    import distributed

    with client as c:
        futures = c.get(dsk, keys, sync=False)
        for future in distributed.as_completed(futures):
            report.finished(future.key, future.result())
        return c.gather(futures)


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


class _Report:
    """Reports a graph's progress to a run logger: failures at once, counts every 10%."""

    def __init__(self, run_logger: Any, names: dict[Any, str]) -> None:
        self.run_logger = run_logger
        self.names = names
        self.total = len(names)
        self.counts: Counter[str] = Counter()
        self._step = max(1, self.total // 10)
        self._lock = threading.Lock()

    def finished(self, key: Any, outcome: Any) -> None:
        name = self.names.get(key, str(key))
        with self._lock:
            if isinstance(outcome, Failure):
                self.counts["failed"] += 1
                self.run_logger.error(
                    "pipex: %s failed (target %s): %s\n%s",
                    name,
                    outcome.target,
                    one_line(outcome.exception),
                    outcome.traceback.rstrip(),
                )
            elif isinstance(outcome, NotRun):
                self.counts["not run"] += 1
                self.run_logger.warning("pipex: %s not run: an input failed", name)
            else:
                self.counts["ran"] += 1
                self.run_logger.debug("pipex: %s ran", name)
            done = sum(self.counts.values())
            if done % self._step == 0 and done < self.total:
                self.run_logger.info(
                    "pipex: %d/%d finished (%s)", done, self.total, self._counts()
                )

    def finish(self) -> None:
        self.run_logger.info("pipex: %d/%d finished (%s)", self.total, self.total, self._counts())

    def _counts(self) -> str:
        return ", ".join(f"{k} {self.counts[k]}" for k in ("ran", "failed", "not run"))


class _ReportCallback(Callback):
    """Feeds a :class:`_Report` from dask's local schedulers."""

    def __init__(self, report: _Report) -> None:
        super().__init__()
        self.report = report

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        self.report.finished(key, result)


class _LogContext:
    """The ids that route a log record to one Prefect task run (opaque to dask)."""

    __slots__ = ("extra",)

    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra

    def __reduce__(self) -> tuple[Any, ...]:
        return (_LogContext, (self.extra,))


def _logging(value: Any, extra: dict[str, Any]) -> Any:
    """A graph task that sends its function's log records to the graph's task run."""
    if isinstance(value, Task) and value.func is execution.run:
        return Task(value.key, _run_logged, _LogContext(extra), *value.args)
    return value


def _run_logged(context: _LogContext, call: Call, keep_going: bool, *inputs: Outcome) -> Any:
    run_logger = PrefectLogAdapter(get_logger("prefect.task_runs"), extra=context.extra)
    with logs_to(run_logger):
        return execution.run(call, keep_going, *inputs)


# -- logs of task functions ------------------------------------------------------------


class _ToRunLogger(logging.Handler):
    """Forwards the log records of one thread to a Prefect run logger."""

    def __init__(self, run_logger: Any, thread: int) -> None:
        super().__init__()
        self.run_logger = run_logger
        self.thread = thread

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or record.name.split(".", 1)[0] == "prefect":
            return
        try:
            message = record.getMessage()
            if record.name != "root":
                message = f"{record.name}: {message}"
            self.run_logger.log(record.levelno, "%s", message, exc_info=record.exc_info)
        except Exception:
            self.handleError(record)


@contextmanager
def logs_to(run_logger: Any) -> Iterator[None]:
    """Send what this thread logs (any logger, at its own level) to ``run_logger``."""
    handler = _ToRunLogger(run_logger, threading.get_ident())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
