"""``@pipex.task``: a decorated function whose calls build lazy nodes with named targets."""

from __future__ import annotations

import datetime
import functools
import importlib
import inspect
import os
import posixpath
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

import dask.threaded

from pipex import config
from pipex.context import current
from pipex.exceptions import SerializerError, TargetError
from pipex.execution import CONTAINERS
from pipex.serializers import for_suffix
from pipex.stores.base import Store
from pipex.stores.file import FileStore
from pipex.targets import Target, Template, render_callable
from pipex.tokens import token

DEFAULT_TARGET = "{path}/{funcname}/{base}.pkl"

F = TypeVar("F", bound=Callable[..., Any])
TargetSpec = str | Callable[..., "str | os.PathLike[str] | Target"]


_SIMPLE_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_ATOMS = frozenset({str, int, float, bool, bytes, type(None)})


@overload
def task(fn: Callable[..., Any], /) -> TaskFunction: ...


@overload
def task(
    fn: None = None,
    /,
    *,
    target: TargetSpec | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    save: bool = True,
    name: str | None = None,
    long_running: bool = False,
    retries: int = 0,
) -> Callable[[Callable[..., Any]], TaskFunction]: ...


def task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    target: TargetSpec | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    save: bool = True,
    name: str | None = None,
    long_running: bool = False,
    retries: int = 0,
) -> TaskFunction | Callable[[Callable[..., Any]], TaskFunction]:
    """Make ``fn`` a pipex task: each call builds a lazy node whose output is ``target``.

    ``target`` is a ``str.format`` template (default ``{path}/{funcname}/{base}.pkl``) or a
    callable taking template fields by name. ``store`` is a :class:`Store` or a folder for a
    :class:`FileStore` (default: the working directory). With ``save=False`` the function
    writes its own output to the temporary path it receives as ``target=``. ``name`` replaces
    the function's name in ``{funcname}`` and in task keys. On a dask.distributed cluster,
    ``long_running=True`` runs each call in a process of its own on the worker (so a long call
    that holds the GIL cannot starve the worker's heartbeat), and ``retries`` reruns a call
    that raised up to that many more times.
    """
    if fn is not None and not callable(fn):
        raise TypeError(
            f"pipex.task got {fn!r} as its first argument; pass the template by keyword: "
            f"@pipex.task(target={fn!r})"
        )

    def decorate(f: Callable[..., Any]) -> TaskFunction:
        return TaskFunction(
            f,
            target=target,
            store=store,
            save=save,
            name=name,
            long_running=long_running,
            retries=retries,
        )

    return decorate if fn is None else decorate(fn)


class TaskFunction:
    """A function decorated with :func:`pipex.task`. Calling it builds a :class:`Node`.

    With ``PIPEX=off`` calling it runs the function directly and returns its result.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        target: TargetSpec | None = None,
        store: Store | str | os.PathLike[str] | None = None,
        save: bool = True,
        name: str | None = None,
        long_running: bool = False,
        retries: int = 0,
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.save = bool(save)
        self.long_running = bool(long_running)
        if type(retries) is not int:
            raise TypeError(f"task {self.name}: retries must be an int, not {retries!r}")
        if retries < 0:
            raise ValueError(f"task {self.name}: retries must be 0 or more, not {retries}")
        self.retries = retries
        self.store = _as_store(store)
        self._spec = target if target is not None else DEFAULT_TARGET
        signature = inspect.signature(fn)
        if not self.save:
            signature = _without_target_parameter(signature, self.name)
        self.signature = signature
        params = list(signature.parameters.values())
        self._names = tuple(p.name for p in params)
        self._name_set = frozenset(self._names)
        self._simple = all(p.kind in _SIMPLE_KINDS for p in params)
        self._n_positional = sum(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
        self._defaults = {p.name: p.default for p in params if p.default is not p.empty}
        self.target_parameters = _target_annotated(fn, self._names)
        if isinstance(self._spec, str):
            self.template: Template | None = Template(self._spec)
            self._needs = self.template.fields
            self._check_static_suffix()
        elif callable(self._spec):
            self.template = None
            self._suffix_known = False
            target_signature = inspect.signature(self._spec)
            self._target_takes_all = any(
                p.kind is inspect.Parameter.VAR_KEYWORD
                for p in target_signature.parameters.values()
            )
            self._target_names = frozenset(target_signature.parameters)
            self._needs = self._target_names | ({"today"} if self._target_takes_all else set())
        else:
            raise TypeError(
                f"task {self.name}: target must be a template string or a callable, "
                f"not {type(self._spec).__name__}"
            )
        self._needs_today = "today" in self._needs

    def __repr__(self) -> str:
        return f"<pipex.task {self.name} target={self._spec!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        module = getattr(self, "__module__", None)
        qualname = getattr(self, "__qualname__", "")
        if module and module != "__main__" and "<" not in qualname:
            try:
                if _import_task(module, qualname) is self:
                    return (_import_task, (module, qualname))
            except (ImportError, AttributeError):
                pass
        options = {
            "target": self._spec,
            "store": self.store,
            "save": self.save,
            "long_running": self.long_running,
            "retries": self.retries,
        }
        return (_rebuild, (self.fn, options, self.name))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        mode = config.mode()
        if mode == "off":
            return self.fn(*args, **kwargs)
        if mode == "prefect":
            from pipex import prefect as prefect_mode

            return prefect_mode.call_as_task(self, args, kwargs)
        return self.node(*args, **kwargs)

    def node(self, *args: Any, **kwargs: Any) -> Node:
        """Build the node for this call, whatever the mode (its target renders on first use)."""
        arguments = self._bind(args, kwargs)
        deps: list[Node] = []
        for value in arguments.values():
            if type(value) not in _ATOMS:
                _has_nodes(value, deps)
        today = datetime.date.today() if self._needs_today else None
        return Node(self, arguments, _unique(deps) if deps else (), current(), today)

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._simple and len(args) <= self._n_positional:
            arguments = dict(zip(self._names, args, strict=False))
            ok = True
            for key, value in kwargs.items():
                if key in arguments or key not in self._name_set:
                    ok = False
                    break
                arguments[key] = value
            if ok and len(arguments) < len(self._names):
                for key, value in self._defaults.items():
                    arguments.setdefault(key, value)
            if ok and len(arguments) == len(self._names):
                return arguments
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}(): {exc}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def render(self, node: Node) -> Target:
        """The target of one call: its template rendered with the call's fields."""
        fields = self._fields(node)
        store = self.store
        if self.template is not None:
            location: Any = self.template.render(fields, self.name)
        else:
            location = render_callable(
                self._spec, fields, self._target_takes_all, self._target_names
            )
            if isinstance(location, Target):
                store, location = location.store, location.path
            elif not isinstance(location, (str, os.PathLike)):
                raise TargetError(
                    f"task {self.name}: the target callable returned "
                    f"{type(location).__name__}; return a str, a path or a pipex.Target"
                )
            location = os.fspath(location)
        path = _normalized(location)
        if self.save and not self._suffix_known:
            self._check_suffix(path)
        return Target(path, store if store is not None else _file_store(os.getcwd()))

    def _fields(self, node: Node) -> dict[str, Any]:
        """The template fields the target needs, first found among: the call's arguments
        (upstream nodes as their targets), the context variables, then ``funcname``,
        ``today``, ``path`` (setting ``pipex.path``) and ``base`` (a token of the call)."""
        arguments = node.arguments
        context = node.context
        names: Iterable[str] = self._needs
        if self.template is None and self._target_takes_all:
            names = {"funcname", "today", "path", "base", *context, *arguments}
        fields: dict[str, Any] = {}
        for name in names:
            if name in arguments:
                value = arguments[name]
                fields[name] = _as_targets(value) if node.deps else value
            elif name in context:
                fields[name] = context[name]
            elif name == "funcname":
                fields[name] = self.name
            elif name == "today":
                fields[name] = node.today or datetime.date.today()
            elif name == "path":
                fields[name] = config.get("path")
            elif name == "base":
                try:
                    fields[name] = self._token(arguments)
                except TargetError:
                    if self.template is not None or not self._target_takes_all:
                        raise  # a **kwargs callable that never reads `base` need not have one
            elif self.template is not None:
                available = sorted({"funcname", "today", "path", "base", *context, *arguments})
                raise TargetError(
                    f"task {self.name}: target template {self.template.text!r} uses "
                    f"{{{name}}}, which is neither an argument nor a context variable. "
                    f"Available: {', '.join(available)}. Set it with pipex.context({name}=...)."
                )
        return fields

    def _token(self, arguments: Mapping[str, Any]) -> str:
        try:
            return token(self.__module__, self.__qualname__, arguments)
        except Exception as exc:
            raise TargetError(
                f"task {self.name}: cannot derive a default `base` from its arguments ({exc}). "
                "Set one with pipex.context(base=...) or give the task a target template "
                "built from its arguments."
            ) from exc

    def _check_static_suffix(self) -> None:
        """Check the suffix once when the template ends in a literal one (``....pkl``)."""
        assert self.template is not None
        literal = self.template.pieces[-1][0] if self.template.pieces[-1][1] is None else ""
        tail = literal.rsplit("/", 1)[-1]
        self._suffix_known = "." in tail
        if self.save and self._suffix_known:
            self._check_suffix(tail[tail.rindex(".") :])

    def _check_suffix(self, path: str) -> None:
        suffix = path if path.startswith(".") else posixpath.splitext(path)[1]
        try:
            for_suffix(suffix)
        except SerializerError as exc:
            raise SerializerError(f"task {self.name}, target {path!r}: {exc}") from None

    def call(self, arguments: Mapping[str, Any], target: str) -> Any:
        """Run the function on resolved arguments, adding ``target=`` when ``save=False``."""
        extra = {} if self.save else {"target": target}
        if self._simple:
            return self.fn(**arguments, **extra)
        bound = inspect.BoundArguments(self.signature, dict(arguments))  # type: ignore[arg-type]
        return self.fn(*bound.args, **bound.kwargs, **extra)


class Node:
    """One call of a pipex task: a lazy dask collection whose result is its :class:`Target`.

    ``pipex.compute(node)``, ``dask.compute(node)`` and ``node.compute()`` run only what is
    missing below it. ``node.target`` is known before anything runs: it is rendered on first
    use (from the context and date of the call), so nodes below finished targets, which
    resolution never visits, never pay for it.
    """

    __slots__ = ("__weakref__", "_key", "_target", "arguments", "context", "deps", "task", "today")

    def __init__(
        self,
        task: TaskFunction,
        arguments: dict[str, Any],
        deps: tuple[Node, ...],
        context: Mapping[str, Any],
        today: datetime.date | None = None,
    ) -> None:
        self.task = task
        self.arguments = arguments
        self.deps = deps
        self.context = context
        self.today = today
        self._target: Target | None = None
        self._key: str | None = None

    @property
    def target(self) -> Target:
        """Where this call's output lives (:class:`TargetError` if the template can't say)."""
        target = self._target
        if target is None:
            target = self._target = self.task.render(self)
        return target

    @property
    def key(self) -> str:
        """``"<funcname>-<target path>"``: names the node in reports and errors."""
        key = self._key
        if key is None:
            key = self._key = f"{self.task.name}-{self.target.path}"
        return key

    def __repr__(self) -> str:
        return f"<pipex.Node {self.task.name} -> {self.target.path}>"

    def compute(self, **kwargs: Any) -> Target:
        """Compute through ``dask.compute`` (pruned by ``__dask_optimize__``)."""
        return dask.compute(self, **kwargs)[0]

    def __dask_graph__(self) -> Mapping[str, Any]:
        from pipex.graph import NodeGraph

        return NodeGraph((self,))

    @property
    def dask_key(self) -> tuple[str, str]:
        """The node's dask key: ``(funcname, target path)``; dask groups tasks by funcname."""
        return (self.task.name, self.target.path)

    def __dask_keys__(self) -> list[tuple[str, str]]:
        return [self.dask_key]

    def __dask_layers__(self) -> tuple[str, ...]:
        return (self.key,)

    def __dask_tokenize__(self) -> str:
        return self.key

    def __dask_postcompute__(self) -> tuple[Callable[..., Any], tuple[()]]:
        return _first, ()

    def __dask_postpersist__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return _persisted, (self.dask_key,)

    @staticmethod
    def __dask_optimize__(dsk: Mapping[Any, Any], keys: Any, **kwargs: Any) -> dict[Any, Any]:
        from pipex.graph import optimize

        return optimize(dsk, keys, **kwargs)

    __dask_scheduler__ = staticmethod(dask.threaded.get)


def _normalized(location: str) -> str:
    """``posixpath.normpath``, skipped for locations it would not change (the usual case)."""
    if "//" in location or "/." in location or location[:2] == "./" or location[-1:] == "/":
        return posixpath.normpath(location)
    return location


def _first(results: Any) -> Any:
    return results[0]


def _persisted(dsk: Mapping[Any, Any], key: tuple[str, str], **kwargs: Any) -> Any:
    from dask.delayed import Delayed

    return Delayed(key, dsk)


def _has_nodes(value: Any, found: list[Node]) -> bool:
    """Append the nodes inside ``value`` (lists, tuples, dicts) to ``found``."""
    if isinstance(value, Node):
        found.append(value)
        return True
    if type(value) in CONTAINERS:
        return any([_has_nodes(v, found) for v in value])
    if type(value) is dict:
        return any([_has_nodes(v, found) for v in value.values()])
    if hasattr(value, "__dask_graph__") and not isinstance(value, type):
        raise TypeError(
            f"pipex tasks take pipex nodes or plain values, not {type(value).__name__}; "
            "compute that dask collection first, or make its producer a pipex task"
        )
    return False


def _as_targets(value: Any) -> Any:
    """``value`` with every node replaced by its target (what templates see)."""
    if isinstance(value, Node):
        return value.target
    if type(value) in CONTAINERS:
        return type(value)(_as_targets(v) for v in value)
    if type(value) is dict:
        return {k: _as_targets(v) for k, v in value.items()}
    return value


def _unique(nodes: list[Node]) -> tuple[Node, ...]:
    if len(nodes) < 2:
        return tuple(nodes)
    return tuple({id(node): node for node in nodes}.values())


def _as_store(store: Store | str | os.PathLike[str] | None) -> Store | None:
    if store is None or isinstance(store, Store):
        return store
    if isinstance(store, (str, os.PathLike)):
        return FileStore(store)
    raise TypeError(f"store must be a pipex Store or a folder, not {type(store).__name__}")


@functools.lru_cache(maxsize=16)
def _file_store(cwd: str) -> FileStore:
    return FileStore(cwd)


def _without_target_parameter(signature: inspect.Signature, name: str) -> inspect.Signature:
    params = signature.parameters
    if "target" in params:
        return signature.replace(parameters=[p for n, p in params.items() if n != "target"])
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return signature
    raise TypeError(
        f"task {name} has save=False, so it must write its output itself: add a `target` "
        "parameter; pipex passes it the temporary path to write"
    )


_TARGET_WORD = re.compile(r"\bTarget\b")


def _target_annotated(fn: Callable[..., Any], names: tuple[str, ...]) -> frozenset[str]:
    """Parameters annotated with ``pipex.Target`` (also inside ``list[...]``, ``| None``)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = getattr(fn, "__annotations__", {})
    return frozenset(n for n in names if n in hints and _mentions_target(hints[n]))


def _mentions_target(annotation: Any) -> bool:
    if annotation is Target:
        return True
    if isinstance(annotation, str):
        return bool(_TARGET_WORD.search(annotation))
    return any(_mentions_target(a) for a in typing.get_args(annotation))


def _import_task(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _rebuild(fn: Callable[..., Any], options: dict[str, Any], name: str) -> TaskFunction:
    return TaskFunction(fn, name=name, **options)
