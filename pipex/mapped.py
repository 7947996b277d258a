"""``pipex.Mapped``: the calls of one task over many items (``task.map``), and ``Targets``.

A :class:`Mapped` holds one :class:`~pipex.core.family.Family` (the task, its argument
columns, the arguments every item shares): no node exists per item until one is asked for
(``m[i]``). It is a dask collection: ``dask.compute(m)`` prunes as ``pipex.compute(m)``
does. :class:`Targets` is what computing it gives: the items' targets in item order,
rendered when asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, overload

import dask
import dask.threaded

from pipex import registry
from pipex.core.family import Family
from pipex.core.targets import Target
from pipex.node import Node


class Mapped:
    """The calls of one task over many items: ``len(m)``, ``m[i]`` (item ``i``'s
    :class:`pipex.Node`), iteration over the nodes. Computing it gives :class:`Targets`."""

    __slots__ = ("family",)

    def __init__(self, family: Family) -> None:
        self.family = family

    def __len__(self) -> int:
        return self.family.length

    def __repr__(self) -> str:
        return f"<pipex.Mapped {self.family.name} x {self.family.length}>"

    @overload
    def __getitem__(self, i: int) -> Node: ...

    @overload
    def __getitem__(self, i: slice) -> list[Node]: ...

    def __getitem__(self, i: int | slice) -> Node | list[Node]:
        if isinstance(i, slice):
            return [item_node(self.family, j) for j in range(*i.indices(len(self)))]
        return item_node(self.family, _index(i, len(self)))

    def __iter__(self) -> Iterator[Node]:
        for i in range(len(self)):
            yield item_node(self.family, i)

    @property
    def targets(self) -> Targets:
        """Every item's :class:`Target`, in item order (rendered in bulk, known before
        running)."""
        return Targets(self.family)

    # -- the dask collection protocol ----------------------------------------------------------

    @property
    def dask_key(self) -> tuple[str, str]:
        return ("pipex-map", f"{self.family.name}-{id(self.family):x}")

    def __dask_graph__(self) -> Mapping[Any, Any]:
        from dask.task_spec import Task

        key = self.dask_key
        return {key: Task(key, _computed, self)}

    def __dask_keys__(self) -> list[tuple[str, str]]:
        return [self.dask_key]

    def __dask_layers__(self) -> tuple[str, ...]:
        return (self.dask_key[1],)

    def __dask_tokenize__(self) -> tuple[str, ...]:
        return self.dask_key

    def __dask_postcompute__(self) -> tuple[Callable[..., Any], tuple[()]]:
        return _first, ()

    def __dask_optimize__(self, dsk: Mapping[Any, Any], keys: Any, **kwargs: Any) -> Any:
        return dsk

    __dask_scheduler__ = staticmethod(dask.threaded.get)

    def compute(self, **kwargs: Any) -> Targets:
        """Compute through ``dask.compute`` (only the missing items run)."""
        return dask.compute(self, **kwargs)[0]


class Targets(Sequence[Target]):
    """The targets of a mapped step's items, in item order: ``len``, index, iterate.

    Holds the step's rendered locations, not one :class:`Target` per item: each is made
    when asked for.
    """

    __slots__ = ("family",)

    def __init__(self, family: Family) -> None:
        self.family = family

    def __len__(self) -> int:
        return self.family.length

    @overload
    def __getitem__(self, i: int) -> Target: ...

    @overload
    def __getitem__(self, i: slice) -> list[Target]: ...

    def __getitem__(self, i: int | slice) -> Target | list[Target]:
        if isinstance(i, slice):
            return [self.family.target(j) for j in range(*i.indices(len(self)))]
        return self.family.target(_index(i, len(self)))

    def __iter__(self) -> Iterator[Target]:
        rendered, store = self.family.rendered()
        for path in rendered.paths():
            yield Target(path, store)

    def __repr__(self) -> str:
        return f"<pipex.Targets {self.family.name} x {len(self)}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Targets):
            return other.family is self.family
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self) and all(
                a == b for a, b in zip(self, other, strict=True)
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def item_node(family: Family, i: int) -> Node:
    """Item ``i``'s node (its upstream items' nodes below it)."""
    arguments = family.arguments(i, item_node)
    deps: dict[int, Node] = {}
    for name, column in family.columns.items():
        if type(column) is Family:
            node = arguments[name]
            deps.setdefault(id(node), node)
    for dep in family.deps:
        deps.setdefault(id(dep), dep)
    node = Node(
        family.task, arguments, tuple(deps.values()), family.context, family.today, family.origin
    )
    node.item = (family, i)
    return node


def _index(i: int, length: int) -> int:
    if not isinstance(i, int):
        raise TypeError(f"mapped steps are indexed by int, not {type(i).__name__}")
    j = i + length if i < 0 else i
    if not 0 <= j < length:
        raise IndexError(f"item {i} of a mapped step of {length} items")
    return j


def _computed(mapped: Mapped) -> Targets:
    compute = registry.load("pipex.compute:compute")  # the layer above, named by string
    (targets,) = compute(mapped, progress=False, scheduler="threads")
    return targets


def _first(results: Any) -> Any:
    return results[0]


class _Column:
    """Placeholder for the ``index``-th iterable while binding ``task.map``'s arguments."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def columns_of(
    task: Any, iterables: tuple[Any, ...], constants: dict[str, Any]
) -> tuple[dict[str, Sequence[Any] | Family], dict[str, Any], int]:
    """``task.map``'s per-item columns and shared arguments by parameter name, and the
    number of items; a ``ValueError`` for iterables of different lengths."""
    name = task.name
    if not iterables:
        raise TypeError(f"{name}.map() needs at least one iterable (one value per item)")
    captured: list[Sequence[Any] | Family] = []
    length = -1
    for position, values in enumerate(iterables):
        column = _captured(values, name, position)
        size = len(column)
        if length >= 0 and size != length:
            raise ValueError(
                f"{name}.map(): its iterables have different lengths: {length} (iterable 1) "
                f"and {size} (iterable {position + 1}); every iterable gives one value per item"
            )
        length = size
        captured.append(column)
    for key, value in constants.items():
        if isinstance(value, Mapped):
            raise TypeError(
                f"{name}.map(): keyword {key}= is a Mapped; keywords go unchanged to every "
                "call. Pass it positionally to map item by item, or compute it first."
            )
    if not task.binder.simple:
        raise TypeError(f"{name}.map() needs a function without *args or positional-only ones")
    bound = task.binder.bind(tuple(_Column(i) for i in range(len(captured))), constants)
    columns = {k: captured[v.index] for k, v in bound.items() if type(v) is _Column}
    shared = {k: v for k, v in bound.items() if type(v) is not _Column}
    return columns, shared, max(length, 0)


def _captured(values: Any, name: str, position: int) -> Sequence[Any] | Family:
    """One iterable of ``task.map``, captured now (a later change to it changes nothing)."""
    if isinstance(values, Mapped):
        return values.family
    if type(values) in (range, tuple, str, bytes):
        column: Sequence[Any] = values
    elif hasattr(values, "tolist") and hasattr(values, "__len__"):  # a numpy array
        column = values.tolist()
    elif hasattr(values, "__len__") or hasattr(values, "__iter__"):
        column = list(values)
    else:
        raise TypeError(
            f"{name}.map(): iterable {position + 1} is a {type(values).__name__}, not an "
            "iterable; give one value per item (a list, a range, a Mapped)"
        )
    kinds = set(map(type, column))
    if any(issubclass(k, (Node, Mapped)) for k in kinds):
        raise TypeError(
            f"{name}.map(): iterable {position + 1} holds pipex nodes; map over the Mapped "
            "that made them (m = step.map(...); next.map(m)), or call the task per node"
        )
    return column
