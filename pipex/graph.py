"""Bottom-up resolution: from the requested nodes downward, stop at every existing target.

A node whose target exists becomes a constant :class:`Target`; nothing below it is checked,
loaded or scheduled. Existence is checked level by level, in one batch per store (one
listing per folder for files). What is missing becomes one flat graph of
``dask.task_spec.Task`` objects, keyed by target.
"""

from __future__ import annotations

import uuid
from collections import ChainMap, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dask.task_spec import DataNode, GraphNode, Task, TaskRef

from pipex import execution
from pipex.exceptions import TargetCollisionError
from pipex.execution import CONTAINERS, Call, Input
from pipex.targets import Target
from pipex.task import Node
from pipex.tokens import token

DaskKey = tuple[str, ...]


def task_key(node: Node, run: str = "", keep: frozenset[DaskKey] = frozenset()) -> DaskKey:
    """The dask key of ``node``'s task in one run: ``(funcname, target path[, run])``."""
    key = node.dask_key
    return (*key, run) if run and key not in keep else key


@dataclass
class Plan:
    """The outcome of resolution: which visited targets exist, and which nodes must run."""

    roots: list[Node]
    done: Mapping[str, Any] = field(default_factory=dict)
    missing: list[Node] = field(default_factory=list)

    def batches(self, size: int, finished: Mapping[str, Any]) -> Iterator[Plan]:
        """The missing nodes in plans of about ``size`` nodes, inputs before their users.

        Each batch's inputs are finished targets or outcomes of earlier batches, read from
        ``finished``, which the caller fills as batches complete. Bounds the memory a
        scheduler needs for very large runs.
        """
        if len(self.missing) <= size:
            yield self
            return
        missing = {node.key: node for node in self.missing}
        placed: set[str] = set()
        batch: list[Node] = []
        done = ChainMap(finished, self.done)  # type: ignore[arg-type]
        for start in self.missing:  # roots and shared inputs first appear in this order
            if start.key in placed:
                continue
            stack = [(start, iter(start.deps))]
            placed.add(start.key)
            while stack:  # depth first, appending each node after all its missing inputs
                node, deps = stack[-1]
                dep = next(deps, None)
                if dep is None:
                    stack.pop()
                    batch.append(node)
                elif dep.key in missing and dep.key not in placed:
                    placed.add(dep.key)
                    canonical = missing[dep.key]
                    stack.append((canonical, iter(canonical.deps)))
            if len(batch) >= size:
                yield Plan(roots=[], done=done, missing=batch)
                batch = []
        if batch:
            yield Plan(roots=[], done=done, missing=batch)

    def graph(
        self, keep_going: bool, run: str = "", keep: frozenset[DaskKey] = frozenset()
    ) -> dict[DaskKey, GraphNode]:
        """One flat task graph of the missing nodes; done inputs are constant Targets.

        Task keys are ``(funcname, target path, run)`` (``run`` left out for keys in
        ``keep``): dask groups tasks by the function name, and a distributed scheduler that
        still holds a previous run's result under the same key would hand it back instead
        of rebuilding a target deleted since.
        """
        missing_keys = {node.key for node in self.missing}
        dsk: dict[DaskKey, GraphNode] = {}
        for node in self.missing:
            inputs = [
                TaskRef(task_key(dep, run, keep))
                if dep.key in missing_keys
                else self.done[dep.key]
                for dep in node.deps
            ]
            key = task_key(node, run, keep)
            dsk[key] = Task(key, execution.run, _call(node), keep_going, *inputs)
        return dsk


def resolve(roots: Iterable[Node], check: bool = True) -> Plan:
    """Walk down from ``roots``, checking targets level by level (all missing if not ``check``)."""
    plan = Plan(roots=list(roots))
    by_target: dict[tuple[Any, str], Node] = {}

    def first_visit(node: Node) -> bool:
        target = node.target
        ident = (target.store, target.path)
        seen = by_target.get(ident)
        if seen is None:
            by_target[ident] = node
            return True
        if seen is not node and not _same_call(seen, node):
            raise TargetCollisionError(
                f"two different calls render the same target {node.target}: "
                f"{_describe(seen)} and {_describe(node)}. Each would overwrite the other's "
                "output. Make the template tell them apart (add an argument or "
                "pipex.context variable to it), or leave `base` unset so pipex derives it "
                "from the arguments."
            )
        return False

    frontier = [node for node in plan.roots if first_visit(node)]
    while frontier:
        exists = exists_many([n.target for n in frontier]) if check else [False] * len(frontier)
        below: list[Node] = []
        for node, done in zip(frontier, exists, strict=True):
            if done:
                plan.done[node.key] = node.target
                continue
            plan.missing.append(node)
            below.extend(dep for dep in node.deps if first_visit(dep))
        frontier = below
    return plan


def exists_many(targets: Sequence[Target]) -> list[bool]:
    """Whether each target exists: one ``exists_many`` call per store."""
    by_store: defaultdict[Any, list[int]] = defaultdict(list)
    for i, target in enumerate(targets):
        by_store[target.store].append(i)
    found = [False] * len(targets)
    for store, indexes in by_store.items():
        answers = store.exists_many([targets[i].path for i in indexes])
        for i, ok in zip(indexes, answers, strict=True):
            found[i] = ok
    return found


class NodeGraph(Mapping[str, GraphNode]):
    """The full (unpruned) graph below some nodes, built only if someone reads it.

    ``__dask_optimize__`` recognises it and resolves from the nodes directly, so
    ``dask.compute(node)`` never builds the part of the graph below finished targets.
    Pickled (e.g. sent to a distributed scheduler) it becomes a plain dict.
    """

    def __init__(self, roots: Sequence[Node]) -> None:
        self.roots = tuple(roots)
        self._dsk: dict[str, GraphNode] | None = None

    def _materialized(self) -> dict[str, GraphNode]:
        if self._dsk is None:
            self._dsk = resolve(self.roots, check=False).graph(keep_going=False)
        return self._dsk

    def __getitem__(self, key: str) -> GraphNode:
        return self._materialized()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._materialized())

    def __len__(self) -> int:
        return len(self._materialized())

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self._materialized(),))


def optimize(dsk: Mapping[Any, Any], keys: Any, **kwargs: Any) -> dict[Any, GraphNode]:
    """``__dask_optimize__``: prune ``dsk`` to what is missing below ``keys``.

    Layers that are still lazy :class:`NodeGraph` objects are resolved from their nodes
    (nothing below a finished target is built); other layers are pruned task by task.
    """
    layers = list(dsk.layers.values()) if hasattr(dsk, "layers") else [dsk]
    roots: list[Node] = []
    merged: dict[Any, Any] = {}
    for layer in layers:
        inner = getattr(layer, "mapping", layer)
        if isinstance(inner, NodeGraph) and inner._dsk is None:
            roots.extend(inner.roots)
        else:
            merged.update(layer)
    if roots:
        plan = resolve(roots)
        root_keys = frozenset(root.dask_key for root in roots)
        merged.update(plan.graph(keep_going=False, run=run_token(), keep=root_keys))
        for root in roots:
            if root.key in plan.done:
                merged[root.dask_key] = DataNode(root.dask_key, plan.done[root.key])
    return prune(merged, list(_flatten(keys)))


def run_token() -> str:
    """A short random token that makes one run's task keys its own."""
    return uuid.uuid4().hex[:8]


def prune(dsk: Mapping[Any, Any], keys: Sequence[Any]) -> dict[Any, Any]:
    """Cull ``dsk`` to ``keys``, replacing pipex tasks whose target exists by constants."""
    out: dict[Any, Any] = {}
    seen = set(keys)
    frontier = [k for k in keys if k in dsk]
    while frontier:
        calls = {k: c for k in frontier if (c := _call_of(dsk[k])) is not None}
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


def _call_of(value: Any) -> Call | None:
    if isinstance(value, Task) and value.func is execution.run:
        return value.args[0]
    return None


def _call(node: Node) -> Call:
    """The node's call with every upstream node replaced by an :class:`Input` placeholder."""
    if not node.deps:
        return Call(node.task, node.arguments, node.target, node.key)
    index = {id(dep): i for i, dep in enumerate(node.deps)}

    def swap(value: Any) -> Any:
        if isinstance(value, Node):
            return Input(index[id(value)])
        if type(value) in CONTAINERS:
            return type(value)(swap(v) for v in value)
        if type(value) is dict:
            return {k: swap(v) for k, v in value.items()}
        return value

    arguments = {}
    linked = []
    for name, value in node.arguments.items():
        swapped = swap(value)
        if swapped is not value:
            linked.append(name)
        arguments[name] = swapped
    return Call(node.task, arguments, node.target, node.key, frozenset(linked))


def _same_call(a: Node, b: Node) -> bool:
    """Whether two nodes are the same call: same function, same arguments, same upstream."""
    try:
        return a.key == b.key and _call_token(a, {}) == _call_token(b, {})
    except Exception:
        return False


def _call_token(node: Node, memo: dict[int, str]) -> str:
    """A token of the whole call below ``node`` (upstream calls included, not just keys)."""
    if id(node) not in memo:

        def swap(value: Any) -> Any:
            if isinstance(value, Node):
                return ("pipex.Node", _call_token(value, memo))
            if type(value) in CONTAINERS:
                return (type(value).__name__, [swap(v) for v in value])
            if type(value) is dict:
                return {k: swap(v) for k, v in value.items()}
            return value

        fn = node.task.fn
        name = (getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn)))
        memo[id(node)] = token(name, node.key, swap(node.arguments))
    return memo[id(node)]


def _describe(node: Node) -> str:
    shown = ", ".join(f"{k}={_short(v)}" for k, v in node.arguments.items())
    return f"{node.task.name}({shown})"


def _short(value: Any) -> str:
    text = repr(value.target.path) if isinstance(value, Node) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _flatten(keys: Any) -> Iterator[Any]:
    if isinstance(keys, list):
        for k in keys:
            yield from _flatten(k)
    else:
        yield keys
