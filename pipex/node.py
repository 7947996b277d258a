"""``pipex.Node``: one call of a pipex task, a lazy dask collection whose result is a Target."""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import pathlib
import threading
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

import dask
import dask.threaded

from pipex.core.collection import NodeGraph, optimize
from pipex.core.order import inputs_first
from pipex.core.rendering import NOWHERE, Origin
from pipex.core.targets import Target
from pipex.core.walk import ATOMS, replace


class Task(Protocol):
    """What a node needs of its task (a :class:`pipex.TaskFunction`)."""

    name: str
    version: str | None
    binder: Any  # a pipex.core.binding.Binder: ``pack(*values)`` -> arguments by name

    def render(self, node: Node) -> Target: ...

    def upstream(self, node: Node) -> Iterable[Node]: ...


class Node:
    """One call of a pipex task: a lazy dask collection whose result is its :class:`Target`.

    ``pipex.compute(node)``, ``dask.compute(node)`` and ``node.compute()`` run only what is
    missing below it. ``node.target`` is known before anything runs: it is rendered on first
    use (from the context and date of the call), so nodes below finished targets, which
    resolution never visits, never pay for it. ``versioned`` says whether this call's task or
    a task below it has a ``version`` (so resolution knows, without walking down, whether
    to read the run ledger). ``item`` is ``(family, i)`` for item ``i`` of a mapped step
    (``m[i]``, or an item of a ``Mapped`` given to a plain task), else ``None``: resolution
    checks such items with the rest of their step, and the step's batches run them.
    """

    __slots__ = (
        "_key",
        "_target",
        "_values",
        "context",
        "deps",
        "item",
        "origin",
        "task",
        "today",
        "versioned",
    )

    def __init__(
        self,
        task: Task,
        arguments: dict[str, Any] | tuple[Any, ...],
        deps: tuple[Node, ...],
        context: Mapping[str, Any],
        today: datetime.date | None = None,
        origin: Origin = NOWHERE,
    ) -> None:
        self.task = task
        self._values = arguments
        self.deps = deps
        self.context = context
        self.today = today
        self.origin = origin
        versioned = task.version is not None
        if not versioned and deps:
            for dep in deps:
                if dep.versioned:
                    versioned = True
                    break
        self.versioned: bool = versioned
        self._target: Target | None = None
        self._key: str | None = None
        self.item: tuple[Any, int] | None = None

    @property
    def arguments(self) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied (a new dict when the call
        gave every parameter by position: the node keeps just their values, a tuple)."""
        values = self._values
        if type(values) is dict:
            return values
        return self.task.binder.pack(*values)

    @property
    def target(self) -> Target:
        """Where this call's output lives (:class:`TargetError` if the template can't say)."""
        target = self._target
        if target is None:
            target = self._target = _rendered(self)
        return target

    @property
    def key(self) -> str:
        """``"<funcname>-<target path>"``: names the node in reports and errors.

        For a target outside the working directory's store, the whole location stands for
        the path: a task writing the same path in two stores makes two nodes.
        """
        key = self._key
        if key is None:
            key = self._key = f"{self.task.name}-{self._where()}"
        return key

    def _where(self) -> str:
        target = self.target
        home = self.origin.store
        if home is not None and (target.store is home or target.store == home):
            return target.path
        return str(target)

    def __repr__(self) -> str:
        return f"<pipex.Node {self.task.name} -> {self.target.path}>"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its whole upstream graph as one flat list, inputs first: pickle
        recurses into nested objects, so a chain of nodes nested in each other would exhaust
        the recursion limit a few hundred steps deep."""
        return (_unflattened, (_flattened(self),))

    def compute(self, **kwargs: Any) -> Target:
        """Compute through ``dask.compute`` (pruned by ``__dask_optimize__``)."""
        return dask.compute(self, **kwargs)[0]

    @property
    def dask_key(self) -> tuple[str, str]:
        """The node's dask key: ``(funcname, target path)``; dask groups tasks by funcname."""
        return (self.task.name, self._where())

    def __dask_graph__(self) -> Mapping[Any, Any]:
        return NodeGraph((self,))

    def __dask_keys__(self) -> list[tuple[str, str]]:
        return [self.dask_key]

    def __dask_layers__(self) -> tuple[str, ...]:
        return (self.key,)

    def __dask_tokenize__(self) -> str:
        return self.key

    def __dask_postcompute__(self) -> tuple[Callable[..., Any], tuple[()]]:
        return _first, ()

    def __dask_postpersist__(self) -> tuple[Callable[..., Any], tuple[tuple[str, str]]]:
        return _persisted, (self.dask_key,)

    __dask_optimize__ = staticmethod(optimize)
    __dask_scheduler__ = staticmethod(dask.threaded.get)


class Collect:
    """A visitor (:func:`pipex.core.walk.visit`) that appends the nodes it meets to ``found``.

    With ``strict``, any other dask collection, and a lazy pipex object that is not a node
    (``pipex.expand``, which says why in ``__pipex_refusal__``), is refused (pipex tasks take
    pipex nodes or plain values), and ``objects`` counts the values met that may change after
    the call (neither plain values nor of a known immutable type).
    """

    __slots__ = ("found", "objects", "strict")

    def __init__(self, found: list[Node], strict: bool = False) -> None:
        self.found = found
        self.strict = strict
        self.objects = 0

    def __call__(self, value: Any) -> None:
        kind = type(value)
        if kind in ATOMS:
            return
        if isinstance(value, Node):
            self.found.append(value)
        elif self.strict:
            if hasattr(value, "__dask_graph__") and not isinstance(value, type):
                raise TypeError(
                    f"pipex tasks take pipex nodes or plain values, not {kind.__name__}; "
                    "compute that dask collection first, or make its producer a pipex task"
                )
            if not isinstance(value, _IMMUTABLE):
                refusal = getattr(value, "__pipex_refusal__", None)
                if isinstance(refusal, str):  # a lazy pipex object that is not a node
                    raise TypeError(refusal)
                self.objects += 1


_IMMUTABLE = (
    Target,
    pathlib.PurePath,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
    fractions.Fraction,
    enum.Enum,
    range,
    type,
)


class _Ref:
    """The ``index``-th node of a flattened graph, where it sits in a node's arguments."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Ref, (self.index,))


class _ToRef:
    """Replaces each upstream node (found by id in ``refs``) by its :class:`_Ref`."""

    __slots__ = ("refs",)

    def __init__(self, refs: dict[int, _Ref]) -> None:
        self.refs = refs

    def __call__(self, value: Any) -> Any:
        return self.refs.get(id(value), value)


class _FromRef:
    """Replaces each :class:`_Ref` by the node it stands for, among ``nodes``."""

    __slots__ = ("nodes",)

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes

    def __call__(self, value: Any) -> Any:
        return self.nodes[value.index] if type(value) is _Ref else value


def _flattened(root: Node) -> list[tuple[Any, ...]]:
    """``root`` and every node below it as records, inputs first, upstream nodes swapped
    for :class:`_Ref` (in a loop: no recursion)."""
    index: dict[int, int] = {}
    records: list[tuple[Any, ...]] = []
    contexts: dict[int, dict[str, Any]] = {}  # each context as one plain dict (picklable)
    for node in inputs_first(root, index):
        variables = contexts.get(id(node.context))
        if variables is None:
            variables = contexts[id(node.context)] = dict(node.context)
        refs = {id(dep): _Ref(index[id(dep)]) for dep in node.deps}
        values = replace(node._values, _ToRef(refs)) if refs else node._values
        index[id(node)] = len(records)
        records.append(
            (
                node.task,
                values,
                tuple(index[id(dep)] for dep in node.deps),
                variables,
                node.today,
                node.origin,
                node._target,
                node._key,
            )
        )
    return records


def _unflattened(records: list[tuple[Any, ...]]) -> Node:
    """The last node of :func:`_flattened` records, its upstream rebuilt below it."""
    nodes: list[Node] = []
    swap = _FromRef(nodes)
    contexts: dict[int, Mapping[str, Any]] = {}
    for task, values, deps, variables, today, origin, target, key in records:
        context = contexts.get(id(variables))
        if context is None:
            context = contexts[id(variables)] = MappingProxyType(variables)
        node = Node(
            task,
            replace(values, swap) if deps else values,
            tuple(nodes[i] for i in deps),
            context,
            today,
            origin,
        )
        node._target, node._key = target, key
        nodes.append(node)
    return nodes[-1]


#: How many targets may render inside each other (a target reading its input's, which reads
#: its input's...) before the inputs of the next are rendered first, in a loop.
NESTED_RENDERS = 24
_rendering = threading.local()


def _rendered(node: Node) -> Target:
    """``node``'s target, rendered. Rendering reads the targets of the inputs it names, which
    render in turn: past :data:`NESTED_RENDERS` levels, those inputs are rendered first, in a
    loop, so a chain of any length renders without exhausting the recursion limit."""
    depth = getattr(_rendering, "depth", 0)
    if depth >= NESTED_RENDERS and node.deps:
        _render_upstream(node)
    _rendering.depth = depth + 1
    try:
        return node.task.render(node)
    finally:
        _rendering.depth = depth


def _render_upstream(node: Node) -> None:
    """Render the targets ``node``'s target reads from upstream, inputs first, in a loop:
    a chain of any depth renders without recursion (each render finds its inputs' ready)."""
    stack = [(node, iter(node.task.upstream(node)))]
    while stack:
        top, deps = stack[-1]
        for dep in deps:
            if dep._target is None and dep.deps:
                stack.append((dep, iter(dep.task.upstream(dep))))
                break
        else:
            stack.pop()
            if top is not node and top._target is None:
                top._target = top.task.render(top)


def _first(results: Any) -> Any:
    return results[0]


def _persisted(dsk: Mapping[Any, Any], key: tuple[str, str], **kwargs: Any) -> Any:
    from dask.delayed import Delayed

    return Delayed(key, dsk)
