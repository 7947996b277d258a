"""Running a plan on a dask.distributed cluster: only the missing tasks, followed as they finish.

Each task's outcome (its small :class:`Target`, a failure, or not run) is known and reported
as it comes, a task lost with its worker (``KilledWorker``) is reported as that task's
failure, and the client never holds any task's data.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import os
import pickle
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import cloudpickle
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer
from dask.task_spec import DataNode, List, Task, TaskRef
from distributed import as_completed

from pipex import settings
from pipex.core import fusion, worker
from pipex.core.graph import is_call, is_chain, new_run_id, task_key, to_dask
from pipex.core.outcomes import Failure, NotRun, Outcome, portable, settle, unmark_raised
from pipex.core.plan import Plan, exists_many
from pipex.core.targets import Target
from pipex.core.worker import Call
from pipex.exceptions import PipexError
from pipex.executors.base import Executor, Observer
from pipex.executors.distributed import OPTIONS
from pipex.executors.distributed.batches import ClusterPool
from pipex.executors.distributed.connect import wait_for_workers
from pipex.executors.distributed.logs import running_task
from pipex.executors.distributed.long_running import LONG_RUNNING_EXECUTOR
from pipex.executors.distributed.plugins import register_plugins
from pipex.executors.distributed.stream import TaskStream


class DistributedExecutor(Executor):
    """Runs plans on ``client``'s cluster; closes the client if it opened it (``owned``)."""

    OPTIONS = OPTIONS
    defers_claims = True

    def __init__(self, client: Any, owned: bool = False) -> None:
        self.client = client
        self.owned = owned

    def close(self) -> None:
        if self.owned:
            self.client.close()

    def execute(
        self, plan: Plan, observer: Observer, keep_going: bool, **options: Any
    ) -> dict[str, Outcome]:
        """Run the plan's missing nodes on the cluster; the outcome of each, by key.

        ``options`` go to ``client.get`` (``workers=``, ``resources=``, ``priority=``...).
        """
        self.check(options)
        wait_for_workers(self.client)
        register_plugins(self.client, plan.missing)
        run_id = new_run_id()
        fuse = keep_going and settings.get("fuse")
        tasks = fusion.chains(plan, fusable=lambda node: not _annotations(node)) if fuse else None
        chains = tasks or [[node] for node in plan.missing]
        steps = {task_key(chain, run_id): chain for chain in chains}
        dsk = to_dask(plan, keep_going, run_id, chains=tasks, timed=False)
        graph = _annotated_graph(dsk, {key: chain[-1] for key, chain in steps.items()})
        follow = _Follow(self.client, steps, plan, observer)
        futures = self.client.get(graph, list(steps), sync=False, **options)
        return follow.run(futures, keep_going)

    def pool(self, options: Mapping[str, Any]) -> ClusterPool:
        """The cluster: one future per batch of items."""
        register_plugins(self.client)
        return ClusterPool(self.client, new_run_id(), options)

    def concurrent(
        self, options: Mapping[str, Any]
    ) -> contextlib.AbstractContextManager[dict[str, Any] | None]:
        """``client.get`` from several threads at once is fine: the options as they are."""
        return contextlib.nullcontext(dict(options))


def execute_on_worker(retrying: bool, call: Call, keep_going: bool, *inputs: Outcome) -> Outcome:
    """What a worker runs for one node: :func:`~pipex.core.worker.execute_call`, known by
    ``call.key`` to log forwarding.

    A task that dask may retry (``retries=N``) raises instead of returning a failure, so that
    dask sees it fail and runs it again; its last failure is reported like any other.
    """
    token = running_task.set(call.key)
    try:
        return worker.execute_call(call, keep_going and not retrying, *inputs)
    except BaseException as exc:
        raise portable(exc) from None  # the client must be able to rebuild it
    finally:
        running_task.reset(token)


def _sealed(task: Task, first: Any) -> Task:
    """``task`` as the scheduler sees it: standard-library callables, bytes and references.

    The task itself (pipex's function, the call with the task's function and arguments, the
    done inputs' Targets) travels pickled and is unpickled only on the worker that runs it,
    with its inputs' results, so the scheduler needs neither pipex nor the task's code.
    ``first`` is the call it runs first (a fused chain's first): what a worker that cannot
    import the task's code names.
    """
    keys = sorted(task.dependencies)
    results = Task(None, dict, Task(None, zip, tuple(keys), List(*map(TaskRef, keys))))
    try:
        sent = cloudpickle.dumps(task)
    except (pickle.PicklingError, RecursionError) as exc:
        name = "-".join(map(str, task.key[:2])) if isinstance(task.key, tuple) else str(task.key)
        raise worker.too_deep_to_send(exc, [name]) or exc from exc
    opener = Task(None, pickle.loads, _UNSEALED)
    module = getattr(first.task.fn, "__module__", None) or "?"
    return Task(task.key, operator.call, opener, sent, results, first.key, module)


class _Unreachable(ImportError):
    """Raised on a worker that cannot unpickle a task: it cannot import what the task's code
    needs. Its message is made where it is read (the client, after ``pipex.compute`` or
    ``dask.compute``): the task, the module, where that module is there, and how to put it
    on the workers' path."""

    def __init__(self, what: str, name: str | None, key: str, module: str) -> None:
        super().__init__(what, name, key, module)
        self.name = name or module

    def __str__(self) -> str:
        what, name, key, module = self.args
        module = name or module
        file = getattr(sys.modules.get(module), "__file__", None)
        if file and os.path.basename(file) == "__init__.py":  # a package: its folder
            file = os.path.dirname(file)
            upload = f"client.upload_file(<a .zip of {file}>)"
        else:
            upload = f"client.upload_file({file!r})" if file else "client.upload_file(<its file>)"
        here = f" (here, on the client: {file})" if file else ""
        stale = " (or has another version of it)" if what.startswith("AttributeError") else ""
        return (
            f"pipex task {key} could not start on its dask worker, which cannot import "
            f"module {module!r}{here}{stale} that the task's code needs ({what}). Workers "
            "import a task's function from its module: put that module on the workers' path: "
            f"set PYTHONPATH for the workers to the folder holding it, send it with {upload}, "
            "or install it on the workers as a package."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args)


def _unsealed(sealed: bytes, results: Mapping[Any, Any], key: str, module: str) -> Any:
    """Run on a worker: unpickle a task sealed by :func:`_sealed`, and run it."""
    try:
        task = pickle.loads(sealed)
    except (ImportError, AttributeError) as exc:  # a module, or a function in it, not found
        name = exc.name if isinstance(exc, ImportError) else None
        raise _Unreachable(f"{type(exc).__name__}: {exc}", name, key, module) from None
    return task(results)


_UNSEALED = pickle.dumps(_unsealed)  # by reference: every worker has pipex


def _unreachable(exc: BaseException, node: Any) -> BaseException:
    """``exc``; for :class:`_Unreachable`, the ``ImportError`` that says what to do, without
    the worker's traceback."""
    return exc.with_traceback(None) if isinstance(exc, _Unreachable) else exc


def sent(roots: Sequence[Any], plan: Plan) -> dict[Any, Any]:
    """The graph ``dask.compute(roots)`` sends to a cluster for ``plan``: built as
    :meth:`DistributedExecutor.execute` builds it (chains fused when ``pipex.fuse`` is on,
    each task sealed, so that a worker that cannot import the task's code says so), with the
    roots under the dask keys their collection promised (a done root: its Target)."""
    root_keys = frozenset(root.dask_key for root in roots)
    run_id = new_run_id()
    fuse = settings.get("fuse")
    tasks = fusion.chains(plan, fusable=lambda node: not _annotations(node)) if fuse else None
    dsk = to_dask(plan, False, run_id, stable=root_keys, chains=tasks, timed=False)
    for key, value in dsk.items():
        if not isinstance(value, Task):
            continue
        if is_call(value):
            dsk[key] = _sealed(Task(key, execute_on_worker, False, *value.args), value.args[0])
        elif is_chain(value):
            step = functools.partial(execute_on_worker, False)
            chain = Task(key, value.func, *value.args, **{**value.kwargs, "step": step})
            dsk[key] = _sealed(chain, value.args[0].first_call())
    for root in roots:
        if root.key in plan.done:
            dsk[root.dask_key] = DataNode(root.dask_key, plan.done[root.key])
    return dsk


def _annotations(node: Any) -> dict[str, Any]:
    annotations: dict[str, Any] = {}
    if node.task.retries:
        annotations["retries"] = node.task.retries
    if node.task.long_running and settings.get("distributed.long-running"):
        annotations["executor"] = LONG_RUNNING_EXECUTOR
    return annotations


def _annotated_graph(dsk: Mapping[Any, Any], nodes: Mapping[Any, Any]) -> Any:
    """``dsk`` with each task run by :func:`execute_on_worker`, one layer per annotation set."""
    groups: dict[tuple[tuple[str, Any], ...], dict[Any, Any]] = {}
    for key, value in dsk.items():
        node = nodes.get(key)
        annotations = _annotations(node) if node is not None else {}
        if is_call(value):
            retrying = "retries" in annotations
            task = Task(key, execute_on_worker, retrying, *value.args, **value.kwargs)
            value = _sealed(task, value.args[0])
        elif is_chain(value):  # fused nodes have no annotations
            step = functools.partial(execute_on_worker, False)
            task = Task(key, value.func, *value.args, **{**value.kwargs, "step": step})
            value = _sealed(task, value.args[0].first_call())
        groups.setdefault(tuple(sorted(annotations.items())), {})[key] = value
    if list(groups) == [()]:
        return groups[()]
    layers = {
        f"pipex-{i}": MaterializedLayer(part, annotations=dict(group) or None)
        for i, (group, part) in enumerate(groups.items())
    }
    return HighLevelGraph(layers, {name: set() for name in layers})


class _Follow:
    """Collects each task's outcome as it finishes, reporting it to the observer.

    dask marks every dependant of a failed task as failed with the same exception; pipex
    reports only the task that failed, and its dependants as not run (:func:`settle`), once
    the outcomes of their inputs are known. ``steps`` maps dask keys to the nodes each task
    runs (one, or a fused chain's).
    """

    def __init__(
        self, client: Any, steps: Mapping[Any, Sequence[Any]], plan: Plan, observer: Observer
    ) -> None:
        self.client = client
        self.steps = steps
        self.observer = observer
        self.missing = {node.key for node in plan.missing}
        self.position = {node.key: i for i, node in enumerate(plan.order())}
        self.outcomes: dict[str, Outcome] = {}
        self.erred: dict[str, Any] = {}  # erred nodes whose inputs' outcomes are not all known
        self.timing = getattr(observer, "timing", None)
        self.stream = TaskStream(client, steps) if self.timing is not None else None

    def run(self, futures: list[Any], keep_going: bool) -> dict[str, Outcome]:
        client = self.client
        pending = {future.key: future for future in futures}
        try:
            for batch in as_completed(futures, loop=client.loop).batches():
                timings = self.stream.timings([f.key for f in batch]) if self.stream else {}
                finished = [f for f in batch if f.status == "finished"]
                # A task that wrote its target (every target of a fused chain) returns that
                # Target, which the client already has: the type the scheduler reported says
                # so, and nothing is fetched. Only failure records (and anything the type
                # does not tell) are gathered.
                fetch = [f for f in finished if f.type is not Target]
                results = dict(zip(fetch, client.gather(fetch) if fetch else [], strict=True))
                for future in finished:
                    nodes = self.steps[future.key]
                    result = results.get(future, nodes[-1].target)
                    timing = timings.get(future.key)
                    # a fused chain that wrote every target returns its last Target only
                    # (nothing to fetch): its steps share the chain's timing
                    for node, outcome, own in fusion.outcomes(nodes, result):
                        if timing is not None and self.timing is not None:
                            started, duration = own or timing[:2]
                            self.timing(node.key, started, duration, timing[2])
                        self._record(node.key, outcome)
                for future in batch:
                    if future.status == "finished":
                        continue
                    if future.status == "cancelled" and client.status != "running":
                        raise self._scheduler_gone()
                    nodes = self.steps[future.key]
                    timing = timings.get(future.key)
                    if timing is not None and self.timing is not None and len(nodes) == 1:
                        self.timing(nodes[0].key, *timing)
                    if not keep_going:
                        if isinstance(future.exception(), _Unreachable):
                            raise _unreachable(future.exception(), nodes[0]) from None
                        future.result()  # raises the task's exception
                        raise RuntimeError(f"pipex task {nodes[-1].key}: {future.status}")
                    self._erred(nodes, _failure(future, nodes[0]))
                self._settle(final=False)
                for future in batch:
                    pending.pop(future.key, None)
                    future.release()
        except BaseException:
            if pending:
                client.cancel(list(pending.values()))
            raise
        self._settle(final=True)
        return self.outcomes

    def _scheduler_gone(self) -> PipexError:
        """The run cannot go on: the client lost its scheduler (and with it every future)."""
        saved = sum(1 for outcome in self.outcomes.values() if isinstance(outcome, Target))
        left = len(self.missing) - len(self.outcomes)
        address = getattr(self.client.scheduler, "address", None) or "its address"
        return PipexError(
            f"the dask scheduler at {address} went away during the run (the client lost its "
            f"connection; status {self.client.status!r}): {saved} pipex task(s) had finished "
            f"and saved their targets, {left} had not finished or not started. Nothing saved "
            "is lost: once the scheduler is back (or with another cluster), rerun and only "
            "those run."
        )

    def _record(self, key: str, outcome: Outcome) -> None:
        self.outcomes[key] = outcome
        self.observer.record(key, outcome)

    def _erred(self, nodes: Sequence[Any], failure: Failure | NotRun) -> None:
        """A task that erred on the cluster: of a fused chain, the steps that wrote their
        targets before it ran; the first other step failed, the rest did not run."""
        if len(nodes) == 1:
            self.erred[nodes[0].key] = nodes[0], failure
            return
        written = exists_many([node.target for node in nodes])
        for node, outcome in zip(nodes, fusion.lost(nodes, failure, written), strict=True):
            if isinstance(outcome, Target):
                self._record(node.key, outcome)
            else:
                self.erred[node.key] = node, outcome

    def _settle(self, final: bool) -> None:
        """Give outcomes to the erred nodes whose inputs' outcomes are known (all if final)."""
        known = self.outcomes
        ready = sorted(
            (
                node
                for node, _ in self.erred.values()
                if final or all(d.key in known or d.key not in self.missing for d in node.deps)
            ),
            key=lambda node: self.position[node.key],
        )
        failures = {node.key: self.erred.pop(node.key)[1] for node in ready}
        settle(ready, known, failures)
        for node in ready:
            self.observer.record(node.key, known[node.key])


def _failure(future: Any, node: Any) -> Failure | NotRun:
    """The failure of a task that erred on the cluster, with its traceback as text."""
    if future.status == "cancelled":
        exc: BaseException = RuntimeError(
            f"pipex task {node.key} was cancelled on the cluster before it finished"
        )
        return Failure(node.key, node.target, exc, f"{type(exc).__name__}: {exc}\n")
    exc = _unreachable(future.exception(), node)
    tb = future.traceback()
    unmark_raised(exc)  # execute_call's note for a raised failure; the report adds its own
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return Failure(node.key, node.target, exc.with_traceback(None), text)
