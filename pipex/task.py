"""``@pipex.task``: a decorated function whose calls build lazy nodes with named targets."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any, overload
from uuid import uuid4

from pipex import registry, settings
from pipex.context import current
from pipex.core.binding import Binder, target_annotated, without_target_parameter
from pipex.core.code import fingerprint
from pipex.core.family import Family
from pipex.core.rendering import DEFAULT_TARGET, TargetOption, TargetSpec, origin
from pipex.core.targets import Target
from pipex.core.walk import ATOMS, copy, visit
from pipex.mapped import Mapped, columns_of, item_node
from pipex.node import Collect, Node
from pipex.stores import Store, store_for

__all__ = ["DEFAULT_TARGET", "Node", "TaskFunction", "TaskOptions", "task"]


@dataclasses.dataclass(frozen=True)
class TaskOptions:
    """The options of :func:`pipex.task`, checked once; the one place that lists them."""

    target: TargetOption | None = None
    store: Store | str | os.PathLike[str] | None = None
    save: bool = True
    name: str | None = None
    long_running: bool = False
    retries: int = 0
    version: str | None = None

    def checked(self, fn: Callable[..., Any]) -> TaskOptions:
        """These options for ``fn``, checked, with ``name`` and ``store`` filled in."""
        name = self.name or fn.__name__
        if type(self.retries) is not int:
            raise TypeError(f"task {name}: retries must be an int, not {self.retries!r}")
        if self.retries < 0:
            raise ValueError(f"task {name}: retries must be 0 or more, not {self.retries}")
        if self.version is not None and type(self.version) not in (str, int):
            raise TypeError(f"task {name}: version must be a str, not {self.version!r}")
        store = None if self.store is None else store_for(self.store)
        return dataclasses.replace(
            self,
            name=name,
            store=store,
            save=bool(self.save),
            long_running=bool(self.long_running),
            version=None if self.version is None else str(self.version),
        )


_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(TaskOptions))


@overload
def task(fn: Callable[..., Any], /) -> TaskFunction: ...


@overload
def task(
    fn: None = None,
    /,
    *,
    target: TargetOption | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    save: bool = True,
    name: str | None = None,
    long_running: bool = False,
    retries: int = 0,
    version: str | None = None,
) -> Callable[[Callable[..., Any]], TaskFunction]: ...


def task(
    fn: Callable[..., Any] | None = None, /, **options: Any
) -> TaskFunction | Callable[[Callable[..., Any]], TaskFunction]:
    """Make ``fn`` a pipex task: each call builds a lazy node whose output is ``target``.

    ``target`` is a ``str.format`` template (default ``{path}/{funcname}/{base}.pkl``) or a
    callable taking template fields by name. ``store`` is a :class:`Store` or a folder for a
    :class:`FileStore` (default: the working directory). With ``save=False`` the function
    writes its own output to the temporary path it receives as ``target=``. ``name`` replaces
    the function's name in ``{funcname}`` and in task keys. On a dask.distributed cluster,
    ``long_running=True`` runs each call in a process of its own on the worker (so a long call
    that holds the GIL cannot starve the worker's heartbeat), and ``retries`` reruns a call
    that raised up to that many more times. ``version`` opts into staleness: a target the run
    ledger recorded under another version counts as missing, so it and everything that
    depends on it rerun (a target the ledger has no record of stays done).
    """
    if fn is not None and not callable(fn):
        raise TypeError(
            f"pipex.task got {fn!r} as its first argument; pass the template by keyword: "
            f"@pipex.task(target={fn!r})"
        )
    unknown = sorted(set(options) - set(_OPTION_NAMES))
    if unknown:
        raise TypeError(
            f"pipex.task got unknown option(s) {', '.join(unknown)}; "
            f"its options are {', '.join(_OPTION_NAMES)}"
        )
    chosen = TaskOptions(**options)

    def decorate(f: Callable[..., Any]) -> TaskFunction:
        return TaskFunction(f, chosen)

    return decorate if fn is None else decorate(fn)


class TaskFunction:
    """A function decorated with :func:`pipex.task`. Calling it builds a :class:`Node`.

    With ``PIPEX=off`` calling it runs the function directly and returns its result.
    """

    __qualname__: str  # the function's, set by functools.update_wrapper

    def __init__(
        self, fn: Callable[..., Any], options: TaskOptions | None = None, **kwargs: Any
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.options = (options or TaskOptions(**kwargs)).checked(fn)
        self.name: str = self.options.name  # type: ignore[assignment]
        self.save = self.options.save
        self.long_running = self.options.long_running
        self.retries = self.options.retries
        self.version = self.options.version
        self.store: Store | None = self.options.store  # type: ignore[assignment]
        self.spec = TargetSpec(self.options.target, self.name, self.save, self._token_parts)
        signature = inspect.signature(fn)
        if not self.save:
            signature = without_target_parameter(signature, self.name)
        self.signature = signature
        self.binder = Binder(signature, self.name)
        self.target_parameters = target_annotated(fn, self.binder.names)
        self._reads_all = "base" in self.spec.needs or self.spec.takes_all
        #: The last call's ``pipex.path``, working directory and their Origin (most calls
        #: repeat them: no cache lookup per node).
        self._origin: tuple[Any, bytes | None, Any] = (None, None, None)

    def __repr__(self) -> str:
        return f"<pipex.task {self.name} target={self.spec.option!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        module = getattr(self, "__module__", None)
        qualname = getattr(self, "__qualname__", "")
        if module and module != "__main__" and "<" not in qualname:
            try:
                spec = f"{module}:{qualname}"
                if registry.locate(spec) is self:
                    return (registry.locate, (spec,))
            except (ImportError, AttributeError):
                pass
        ident = self.__dict__.get("_ident") or self.__dict__.setdefault("_ident", uuid4().hex)
        return (rebuilt, (ident, self.fn, self.options))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if settings.mode_set():  # else the default mode, cache: build the node
            mode = settings.mode()
            if mode == "off":
                return self.fn(*args, **kwargs)
            handler = settings.MODE_CALLS.get(mode)
            if handler is not None:
                return registry.load(handler)(self, args, kwargs)
        return self._build(args, kwargs)

    def node(self, *args: Any, **kwargs: Any) -> Node:
        """Build the node for this call, whatever the mode (its target renders on first use).

        The call is captured now: containers among the arguments are copied, the context,
        the ``pipex.path`` setting and the working directory are read; when an argument
        holds an object that may change later and the target reads it, the target renders
        now too.
        """
        return self._build(args, kwargs)

    def map(self, *iterables: Any, **constants: Any) -> Mapped:
        """One call per item: positional ``iterables`` zipped elementwise (lists, ranges,
        arrays, or another :class:`pipex.Mapped`), ``constants`` the same for every call (a
        node among them is computed once). No node is made per item.

        With ``PIPEX=off`` the calls run at once and their results come back as a list.
        """
        if settings.mode_set() and settings.mode() == "off":
            return [self.fn(*args, **constants) for args in zip(*iterables, strict=True)]  # type: ignore[return-value]
        columns, shared, length = columns_of(self, iterables, constants)
        deps: list[Node] = []
        for name, value in shared.items():
            if type(value) is Node:
                deps.append(value)
            elif type(value) not in ATOMS:
                visit(value, Collect(deps, strict=True))
                shared[name] = copy(value)
        spec = self.spec
        family = Family(
            self,
            columns,
            shared,
            _unique(deps),
            current(),
            datetime.date.today() if spec.needs_today else None,
            self._where(),
            length,
            item_node,
        )
        return Mapped(family)

    def _where(self) -> Any:
        """The :class:`Origin` of a call made now."""
        root = settings.root() if self.spec.needs_root and "path" not in current() else None
        if self.store is not None:
            return origin(root, None)
        cwd = os.getcwdb()
        last = self._origin
        if last[1] == cwd and last[0] is root:
            return last[2]
        where = origin(root, cwd)
        self._origin = (root, cwd, where)
        return where

    def _build(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Node:
        """:meth:`node`, on the call's packed arguments (the hot path of graph building)."""
        binder = self.binder
        deps: list[Node] = []
        render_now = False
        values: dict[str, Any] | tuple[Any, ...] = args
        if not kwargs and len(args) == binder.exact:  # the usual call: all by position
            for value in args:
                kind = type(value)
                if kind is Node:
                    deps.append(value)
                elif kind not in ATOMS:  # a container, or an object: looked at by name
                    deps.clear()
                    values = binder.pack(*args)
                    break
        else:
            values = binder.bind(args, kwargs)
        if type(values) is dict:
            for name, value in values.items():
                kind = type(value)
                if kind is Node:
                    deps.append(value)
                elif kind is Mapped:  # a list of the items' data (or Targets), in item order
                    items = values[name] = list(value)
                    deps.extend(items)
                elif kind not in ATOMS:
                    found = Collect(deps, strict=True)
                    visit(value, found)
                    values[name] = copy(value)
                    if found.objects and (name in self.spec.needs or self._reads_all):
                        render_now = True
        context = current()
        spec = self.spec
        root = settings.root() if spec.needs_root and "path" not in context else None
        if self.store is None:
            cwd = os.getcwdb()
            last = self._origin
            if last[1] == cwd and last[0] is root:
                where = last[2]
            else:
                where = origin(root, cwd)
                self._origin = (root, cwd, where)
        else:
            where = origin(root, None)
        node = Node(
            self,
            values,
            tuple(deps) if len(deps) < 2 else _unique(deps),
            context,
            datetime.date.today() if spec.needs_today else None,
            where,
        )
        if render_now:
            _ = node.target
        return node

    def render(self, node: Node) -> Target:
        """The target of one call: its template rendered with the call's fields."""
        return self.spec.render(node, self.store)

    def upstream(self, node: Node) -> list[Node]:
        """The upstream nodes whose targets this call's target is rendered from."""
        return self.spec.upstream(node)

    @functools.cached_property
    def code(self) -> str:
        """A fingerprint of the function's code (its source without comments), once per task."""
        return fingerprint(self.fn)

    def _token_parts(self, arguments: Mapping[str, Any]) -> tuple[Any, ...]:
        """What the default ``base`` is a token of: the task's import name and arguments."""
        return (self.__module__, self.__qualname__, arguments)

    def call(self, arguments: Mapping[str, Any], target: str) -> Any:
        """Run the function on resolved arguments, adding ``target=`` when ``save=False``."""
        if self.save:
            return self.binder.call(self.fn, arguments)
        return self.binder.call(self.fn, arguments, target=target)


def _unique(nodes: list[Node]) -> tuple[Node, ...]:
    return tuple({id(node): node for node in nodes}.values())


class _Rebuilt:
    """Task functions unpickled by value in this process, by the id their sender gave them
    (the most recent :attr:`SIZE`): a worker that receives the same function with every
    task builds it once (its signature, binder and template), not once per task."""

    SIZE = 256

    def __init__(self) -> None:
        self.items: dict[str, TaskFunction] = {}

    def get(self, ident: str, fn: Callable[..., Any], options: TaskOptions) -> TaskFunction:
        task = self.items.get(ident)
        if task is None:
            task = self.items[ident] = TaskFunction(fn, options)
            if len(self.items) > self.SIZE:
                self.items.pop(next(iter(self.items)), None)
        return task


_REBUILT = _Rebuilt()


def rebuilt(ident: str, fn: Callable[..., Any], options: TaskOptions) -> TaskFunction:
    """Unpickling a task function sent by value: the one rebuilt here under ``ident``
    before, else a new one."""
    return _REBUILT.get(ident, fn, options)
