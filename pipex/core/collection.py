"""The dask collection protocol of nodes: ``dask.compute(node)`` prunes as pipex does.

A node's ``__dask_graph__`` is a lazy :class:`NodeGraph`; its ``__dask_optimize__`` is
:func:`optimize`, which resolves from the nodes directly, so the graph below finished
targets is never built.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dask.task_spec import DataNode, GraphNode

from pipex import registry
from pipex.core import plan as planning
from pipex.core.graph import new_run_id, prune, to_dask


class NodeGraph(Mapping[Any, GraphNode]):
    """The full (unpruned) graph below some nodes, built only if someone reads it.

    :func:`optimize` recognises it and resolves from the nodes directly. Pickled (e.g. sent
    to a distributed scheduler) it becomes a plain dict.
    """

    def __init__(self, roots: Sequence[Any]) -> None:
        self.roots = tuple(roots)
        self._dsk: dict[Any, GraphNode] | None = None
        self._sent: dict[Any, GraphNode] | None = None

    @property
    def built(self) -> bool:
        """Whether the full graph has been built (someone read it)."""
        return self._dsk is not None

    def _materialized(self) -> dict[Any, GraphNode]:
        if self._dsk is None:
            self._dsk = to_dask(planning.resolve(self.roots, check=False), keep_going=False)
        return self._dsk

    def __getitem__(self, key: Any) -> GraphNode:
        return self._materialized()[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._materialized())

    def __len__(self) -> int:
        return len(self._materialized())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (sent to a distributed scheduler): what is missing below the roots, resolved
        here, where the targets were built, and not the full graph."""
        if self._dsk is not None:
            return (dict, (self._dsk,))
        if self._sent is None:
            self._sent = _sent(self.roots)
        return (dict, (self._sent,))


#: Called with the missing nodes when a graph is pickled while ``distributed`` is imported
#: (sent to a cluster by ``dask.compute``): import strings, loaded on use.
ON_SEND = ("pipex.executors.distributed.plugins:on_send",)
#: Builds the graph sent to a cluster from the roots and their plan, as ``pipex.compute``
#: builds it there (fused chains, sealed tasks): an import string, loaded on use.
SEND = "pipex.executors.distributed.execute:sent"


def _sent(roots: Sequence[Any]) -> dict[Any, GraphNode]:
    plan = planning.resolve(roots)
    if "distributed" not in sys.modules:
        return _pruned(roots, plan)
    for spec in ON_SEND:
        registry.load(spec)(plan.missing)
    built: dict[Any, GraphNode] = registry.load(SEND)(roots, plan)
    return built


def _pruned(roots: Sequence[Any], plan: planning.Plan) -> dict[Any, GraphNode]:
    """The graph of ``plan``; roots keep the dask keys their collection promised."""
    root_keys = frozenset(root.dask_key for root in roots)
    dsk = to_dask(plan, keep_going=False, run_id=new_run_id(), stable=root_keys)
    for root in roots:
        if root.key in plan.done:
            dsk[root.dask_key] = DataNode(root.dask_key, plan.done[root.key])
    return dsk


def optimize(dsk: Mapping[Any, Any], keys: Any, **kwargs: Any) -> dict[Any, GraphNode]:
    """``__dask_optimize__``: prune ``dsk`` to what is missing below ``keys``.

    Layers that are still lazy :class:`NodeGraph` objects are resolved from their nodes
    (nothing below a finished target is built); other layers are pruned task by task.
    """
    layers = list(dsk.layers.values()) if hasattr(dsk, "layers") else [dsk]
    roots: list[Any] = []
    merged: dict[Any, Any] = {}
    for layer in layers:
        inner = getattr(layer, "mapping", layer)
        if isinstance(inner, NodeGraph) and not inner.built:
            roots.extend(inner.roots)
        else:
            merged.update(layer)
    if roots:
        merged.update(_pruned(roots, planning.resolve(roots)))
    return prune(merged, list(_flatten(keys)))


def _flatten(keys: Any) -> Iterator[Any]:
    if isinstance(keys, list):
        for k in keys:
            yield from _flatten(k)
    else:
        yield keys
