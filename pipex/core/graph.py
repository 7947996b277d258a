"""A plan as a dask graph: one ``dask.task_spec.Task`` per missing node, keyed by target.

Each task runs :func:`pipex.core.worker.execute_call` on the node's :class:`Call`; inputs
that are done enter as constant :class:`Target` values, missing ones as task references.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from dask.task_spec import DataNode, GraphNode, Task, TaskRef

from pipex.core import fusion, worker
from pipex.core.plan import Plan, exists_many
from pipex.core.walk import replace
from pipex.core.worker import Call, Input

DaskKey = tuple[str, ...]


def new_run_id() -> str:
    """A short random id that makes one run's dask keys its own."""
    return uuid.uuid4().hex[:8]


def dask_key(node: Any, run_id: str = "", stable: frozenset[DaskKey] = frozenset()) -> DaskKey:
    """The dask key of ``node``'s task in one run: ``(funcname, target path[, run id])``.

    Keys in ``stable`` keep the node's own dask key (what ``__dask_keys__`` promised).
    """
    key = node.dask_key
    return (*key, run_id) if run_id and key not in stable else key


def task_key(
    chain: Sequence[Any], run_id: str = "", stable: frozenset[DaskKey] = frozenset()
) -> DaskKey:
    """The dask key of the task that runs ``chain`` (one node, or a fused chain, inputs
    first): its last node's :func:`dask_key`, named after every step it holds.

    A fused chain's name joins its steps' task names with ``+`` (each once, in order:
    ``load+double+total``), so that the dashboard, which names a task by its key's first
    part, still shows each step; the rest is the last node's target path (and run id).
    """
    key = dask_key(chain[-1], run_id, stable)
    if len(chain) == 1 or chain[-1].dask_key in stable:
        return key
    name = "+".join(dict.fromkeys(node.task.name for node in chain))
    return (name, *key[1:])


def to_dask(
    plan: Plan,
    keep_going: bool,
    run_id: str = "",
    stable: frozenset[DaskKey] = frozenset(),
    chains: Sequence[Sequence[Any]] | None = None,
    timed: bool = True,
) -> dict[DaskKey, GraphNode]:
    """One flat task graph of the plan's missing nodes; done inputs are constant Targets.

    Dask keys are ``(funcname, target path, run id)``: dask groups tasks by the function
    name, and a distributed scheduler that still holds a previous run's result under the
    same key would hand it back instead of rebuilding a target deleted since. With
    ``chains`` (the nodes of each task: from :func:`pipex.core.fusion.chains`, or packed by
    :func:`pipex.core.bundles.bundles`), each list of several nodes is one task under its
    :func:`task_key`, run by :func:`~pipex.core.fusion.execute_chain` as a batch of one
    item (``timed`` as there; a bundle of several chains is always timed).
    """
    if chains is None:
        chains = [[node] for node in plan.missing]
    task_of = {node.key: (chain, s) for chain in chains for s, node in enumerate(chain)}
    dsk: dict[DaskKey, GraphNode] = {}

    def input_of(dep: Any) -> Any:
        found = task_of.get(dep.key)
        if found is None:
            return plan.done[dep.key]
        chain, s = found
        ref = TaskRef(task_key(chain, run_id, stable))
        return ref if len(chain) == 1 else Task(None, fusion.pick, ref, dep.target, s)

    for chain in chains:
        key = task_key(chain, run_id, stable)
        if len(chain) == 1:
            node = chain[0]
            inputs = [input_of(dep) for dep in node.deps]
            call = call_of(node, plan.rewrite(node.key), plan.defer)
            dsk[key] = Task(key, worker.execute_call, call, keep_going, *inputs)
            continue
        inputs = [input_of(dep) for dep in chain[0].deps]
        for before, node in itertools.pairwise(chain):
            inputs.extend(input_of(dep) for dep in node.deps if dep.key != before.key)
        batch = fusion.chain_batch(
            chain, lambda n: call_of(n, plan.rewrite(n.key), plan.defer), _home
        )
        timed_here = timed or fusion.several(chain)  # a bundle's steps: their own timing
        dsk[key] = Task(key, fusion.execute_chain, batch, keep_going, *inputs, timed=timed_here)
    return dsk


def _home(node: Any) -> bool:
    """Whether ``node``'s key is ``"<name>-<path>"`` (its target is in its home store)."""
    return bool(node.key == f"{node.task.name}-{node.target.path}")


class _Placeholders:
    """Replaces each upstream node by the :class:`Input` of its position in ``deps``."""

    __slots__ = ("index",)

    def __init__(self, deps: Sequence[Any]) -> None:
        self.index = {id(dep): i for i, dep in enumerate(deps)}

    def __call__(self, value: Any) -> Any:
        i = self.index.get(id(value))
        return value if i is None else Input(i)


def call_of(node: Any, rewrite: bool | str = False, defer: bool = False) -> Call:
    """The node's call with every upstream node replaced by an :class:`Input` placeholder
    (``rewrite``: its target exists, but is to be written again, see ``Plan.rewrite``;
    ``defer``: a target another runner claimed is not waited for, see ``Call.defer``)."""
    if not node.deps:
        return Call(node.task, node.arguments, node.target, node.key, rewrite=rewrite, defer=defer)
    swap = _Placeholders(node.deps)
    arguments = {}
    linked = []
    for name, value in node.arguments.items():
        swapped = replace(value, swap)
        if swapped is not value:
            linked.append(name)
        arguments[name] = swapped
    return Call(node.task, arguments, node.target, node.key, frozenset(linked), rewrite, defer)


def is_call(value: Any) -> bool:
    """Whether a graph value is a pipex task (runs a :class:`Call`)."""
    return isinstance(value, Task) and value.func is worker.execute_call


def is_chain(value: Any) -> bool:
    """Whether a graph value is a fused chain of pipex tasks (runs a chain's ``Batch``)."""
    return isinstance(value, Task) and value.func is fusion.execute_chain


def prune(dsk: Mapping[Any, Any], keys: Sequence[Any]) -> dict[Any, Any]:
    """Cull ``dsk`` to ``keys``, replacing pipex tasks whose target exists by constants."""
    out: dict[Any, Any] = {}
    seen = set(keys)
    frontier = [k for k in keys if k in dsk]
    while frontier:
        calls = {k: dsk[k].args[0] for k in frontier if is_call(dsk[k])}
        exists = exists_many([c.target for c in calls.values()])
        done = {k for k, ok in zip(calls, exists, strict=True) if ok}
        below = []
        for key in frontier:
            if key in done:
                out[key] = DataNode(key, calls[key].target)
                continue
            out[key] = value = dsk[key]
            for dep in getattr(value, "dependencies", ()):
                if dep not in seen and dep in dsk:
                    seen.add(dep)
                    below.append(dep)
        frontier = below
    return out
