"""Running a plan on a dask.distributed cluster: only the missing tasks, followed as they finish.

Each task's outcome (its small :class:`Target`, a failure, or not run) is known and reported
as it comes, a task lost with its worker (``KilledWorker``) is reported as that task's
failure, and the client never holds any task's data (:mod:`.follow`). Each task is sealed
for the scheduler (:mod:`.sealing`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from dask.highlevelgraph import HighLevelGraph, MaterializedLayer
from dask.task_spec import DataNode, Task

from pipex import settings
from pipex.core import fusion, worker
from pipex.core.bundles import bundles
from pipex.core.graph import is_call, is_chain, new_run_id, task_key, to_dask
from pipex.core.outcomes import Outcome, portable
from pipex.core.plan import Plan
from pipex.core.worker import Call
from pipex.executors.base import Executor, Observer
from pipex.executors.distributed import OPTIONS
from pipex.executors.distributed.batches import ClusterPool
from pipex.executors.distributed.connect import wait_for_workers
from pipex.executors.distributed.follow import Follow
from pipex.executors.distributed.logs import running_task
from pipex.executors.distributed.long_running import LONG_RUNNING_EXECUTOR
from pipex.executors.distributed.plugins import register_plugins
from pipex.executors.distributed.sealing import sealed


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
        return self._run(plan, observer, keep_going, options, bundle=True)

    def _run(
        self,
        plan: Plan,
        observer: Observer,
        keep_going: bool,
        options: Mapping[str, Any],
        bundle: bool,
    ) -> dict[str, Outcome]:
        """The plan's graph sent and followed; the chains of a lost bundle then run again,
        each in a task of its own (:meth:`Follow.again`)."""
        run_id = new_run_id()
        fuse = keep_going and settings.get("fuse")
        tasks = _fused(plan, self.client, bundle) if fuse else None
        chains = tasks or [[node] for node in plan.missing]
        steps = {task_key(chain, run_id): chain for chain in chains}
        dsk = to_dask(plan, keep_going, run_id, chains=tasks, timed=False)
        graph = _annotated_graph(dsk, {key: chain[-1] for key, chain in steps.items()})
        follow = Follow(self.client, steps, plan, observer)
        futures = self.client.get(graph, list(steps), sync=False, **options)
        outcomes = follow.run(futures, keep_going)
        again = follow.again(plan)
        if again is not None:
            outcomes.update(self._run(again, observer, keep_going, options, bundle=False))
        return outcomes

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


def sent(roots: Sequence[Any], plan: Plan) -> dict[Any, Any]:
    """The graph ``dask.compute(roots)`` sends to a cluster for ``plan``: built as
    :meth:`DistributedExecutor.execute` builds it (chains fused when ``pipex.fuse`` is on,
    each task sealed, so that a worker that cannot import the task's code says so), with the
    roots under the dask keys their collection promised (a done root: its Target)."""
    root_keys = frozenset(root.dask_key for root in roots)
    run_id = new_run_id()
    fuse = settings.get("fuse")
    tasks = fusion.chains(plan, fusable=_plain) if fuse else None
    dsk = to_dask(plan, False, run_id, stable=root_keys, chains=tasks, timed=False)
    for key, value in dsk.items():
        if not isinstance(value, Task):
            continue
        if is_call(value):
            dsk[key] = sealed(Task(key, execute_on_worker, False, *value.args), value.args[0])
        elif is_chain(value):
            step = functools.partial(execute_on_worker, False)
            chain = Task(key, value.func, *value.args, **{**value.kwargs, "step": step})
            dsk[key] = sealed(chain, value.args[0].first_call())
    for root in roots:
        if root.key in plan.done:
            dsk[root.dask_key] = DataNode(root.dask_key, plan.done[root.key])
    return dsk


def _fused(plan: Plan, client: Any, bundle: bool) -> list[list[Any]]:
    """The nodes of each task: chains fused (with ``bundle``, packed into bundles for the
    cluster's worker threads); nodes with annotations (retries, long-running) alone."""
    chains = fusion.chains(plan, fusable=_plain)
    if not bundle:
        return chains
    return bundles(chains, sum(client.nthreads().values()), fusable=_plain)


def _plain(node: Any) -> bool:
    """Whether a node may share its task with others (it has no annotations)."""
    return not _annotations(node)


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
            value = sealed(task, value.args[0])
        elif is_chain(value):  # fused nodes have no annotations
            step = functools.partial(execute_on_worker, False)
            task = Task(key, value.func, *value.args, **{**value.kwargs, "step": step})
            value = sealed(task, value.args[0].first_call())
        groups.setdefault(tuple(sorted(annotations.items())), {})[key] = value
    if list(groups) == [()]:
        return groups[()]
    layers = {
        f"pipex-{i}": MaterializedLayer(part, annotations=dict(group) or None)
        for i, (group, part) in enumerate(groups.items())
    }
    return HighLevelGraph(layers, {name: set() for name in layers})
