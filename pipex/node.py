"""``pipex.Node``: one call of a pipex task, a lazy dask collection whose result is a Target."""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import pathlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import dask
import dask.threaded

from pipex.core.collection import NodeGraph, optimize
from pipex.core.rendering import NOWHERE, Origin
from pipex.core.targets import Target
from pipex.core.walk import ATOMS


class Task(Protocol):
    """What a node needs of its task (a :class:`pipex.TaskFunction`)."""

    name: str
    version: str | None
    binder: Any  # a pipex.core.binding.Binder: ``pack(*values)`` -> arguments by name

    def render(self, node: Node) -> Target: ...


class Node:
    """One call of a pipex task: a lazy dask collection whose result is its :class:`Target`.

    ``pipex.compute(node)``, ``dask.compute(node)`` and ``node.compute()`` run only what is
    missing below it. ``node.target`` is known before anything runs: it is rendered on first
    use (from the context and date of the call), so nodes below finished targets, which
    resolution never visits, never pay for it. ``versioned`` says whether this call's task or
    a task below it has a ``version`` (so resolution knows, without walking down, whether
    to read the run ledger).
    """

    __slots__ = (
        "_key",
        "_target",
        "_values",
        "context",
        "deps",
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
        self.versioned = versioned
        self._target: Target | None = None
        self._key: str | None = None

    @property
    def arguments(self) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied (a new dict when the call
        gave every parameter by position: the node keeps just their values, a tuple)."""
        values = self._values
        if type(values) is dict:
            return values
        return self.task.binder.pack(*values)  # type: ignore[no-any-return]

    @property
    def target(self) -> Target:
        """Where this call's output lives (:class:`TargetError` if the template can't say)."""
        target = self._target
        if target is None:
            target = self._target = self.task.render(self)
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


def _first(results: Any) -> Any:
    return results[0]


def _persisted(dsk: Mapping[Any, Any], key: tuple[str, str], **kwargs: Any) -> Any:
    from dask.delayed import Delayed

    return Delayed(key, dsk)
