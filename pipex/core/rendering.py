"""A task's ``target`` option compiled once, and rendered for each call.

The fields a target sees are first found among the call's arguments (upstream nodes as their
targets), then the context variables, then ``funcname``, ``today``, ``path`` (setting
``pipex.path``) and ``base`` (a token of the call's arguments).
"""

from __future__ import annotations

import datetime
import functools
import inspect
import os
import posixpath
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, Protocol, cast

from pipex import settings
from pipex.core.targets import Target
from pipex.core.templates import (
    ROOT_FIELDS,
    Template,
    check_contained,
    check_location,
    check_named,
    check_segments,
    did_you_mean,
    render_callable,
)
from pipex.core.tokens import token
from pipex.core.walk import replace, visit
from pipex.exceptions import SerializerError, TargetError
from pipex.serializers import for_suffix, suffix_of
from pipex.stores import FileStore, Store, locate

DEFAULT_TARGET = "{path}/{funcname}/{base}.pkl"

_ATOMS = frozenset({str, int, float, bool, bytes, type(None)})
_NOTHING_FREE: frozenset[str] = frozenset()  # `path` given as an argument: checked like any

TargetOption = str | Callable[..., "str | os.PathLike[str] | Target"]


class Call(Protocol):
    """What rendering reads of one call (a :class:`pipex.Node`)."""

    context: Mapping[str, Any]
    today: datetime.date | None
    deps: tuple[Any, ...]
    origin: Origin

    @property
    def arguments(self) -> dict[str, Any]: ...


class Origin(NamedTuple):
    """Where a call was made: the ``pipex.path`` setting and the working directory's store
    then (``None`` where the target does not need them)."""

    path: Any
    store: Store | None


NOWHERE = Origin(None, None)


@functools.lru_cache(maxsize=64)
def origin(path: Any, cwd: bytes | None) -> Origin:
    """The (shared) :class:`Origin` of calls made with setting ``path`` in folder ``cwd``
    (as ``os.getcwdb()`` gives it: no decoding per call)."""
    return Origin(path, None if cwd is None else FileStore(os.fsdecode(cwd)))


class TargetSpec:
    """The ``target`` option of one task: a :class:`Template` or a callable."""

    __slots__ = (
        "names",
        "needs",
        "needs_root",
        "needs_today",
        "option",
        "rooted",
        "save",
        "suffix_known",
        "takes_all",
        "task",
        "template",
        "token_of",
    )

    def __init__(
        self,
        option: TargetOption | None,
        task: str,
        save: bool,
        token_of: Callable[[Mapping[str, Any]], Any],
    ) -> None:
        self.option = option if option is not None else DEFAULT_TARGET
        self.rooted = option is None  # the default template's {path} is the root, always
        self.task = task
        self.save = save
        self.token_of = token_of  # what the default `base` tokenizes besides the arguments
        self.takes_all = False
        self.names: frozenset[str] = frozenset()
        if isinstance(self.option, str):
            try:
                self.template: Template | None = Template(self.option)
            except TargetError as exc:
                raise TargetError(f"task {task}: {exc}") from None
            self.needs: frozenset[str] = self.template.fields
            self._check_static_suffix()
        elif callable(self.option):
            self.template = None
            self.suffix_known = False
            parameters = inspect.signature(self.option).parameters.values()
            self.takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
            self.names = frozenset(p.name for p in parameters)
            self.needs = self.names | ({"today"} if self.takes_all else frozenset())
        else:
            raise TypeError(
                f"task {task}: target must be a template string or a callable, "
                f"not {type(self.option).__name__}"
            )
        self.needs_today = "today" in self.needs
        self.needs_root = "path" in self.needs or self.takes_all

    def render(self, call: Call, store: Store | None) -> Target:
        """The target of one call: the template rendered with the call's fields.

        No value taken from the call's arguments may put the target outside the root: such
        fields are checked whatever their name (``path`` too), for callables as well.
        """
        fields, given = self.fields(call)
        if self.template is not None:
            free = _NOTHING_FREE if "path" in given else ROOT_FIELDS
            location: Any = self.template.render(fields, self.task, free, given)
        else:
            self._check_callable_fields(fields, frozenset(given))
            option = cast(Callable[..., Any], self.option)  # not a str: there is no template
            location = render_callable(option, fields, self.takes_all, self.names)
            if isinstance(location, Target):
                store, location = location.store, location.path
            elif not isinstance(location, (str, os.PathLike)):
                raise TargetError(
                    f"task {self.task}: the target callable returned "
                    f"{type(location).__name__}; return a str, a path or a pipex.Target"
                )
            location = os.fspath(location)
            self._check_callable_location(location)
        if "://" in location:  # a URL picks its store: pipex.stores.locate
            store, location = locate(location, store)
        path = _normalized(location)
        check_location(path, self.task)
        if self.save and not self.suffix_known:
            self._check_suffix(suffix_of(path), path)
        if store is None:
            store = call.origin.store or _file_store(os.getcwd())
        return Target(path, store)

    def fields(self, call: Call) -> tuple[dict[str, Any], list[str]]:
        """The fields the target needs for one call, and which of them are arguments."""
        arguments = call.arguments
        context = call.context
        names: Iterable[str] = self.needs
        if self.template is None and self.takes_all:
            names = {"funcname", "today", "path", "base", *context, *arguments}
        deps = call.deps
        fields: dict[str, Any] = {}
        given: list[str] = []
        for name in names:
            if name in arguments and not (name == "path" and self.rooted):
                given.append(name)
                value = arguments[name]
                if deps and type(value) not in _ATOMS:
                    value = replace(value, _AsTarget(deps))
                fields[name] = value
            elif name in context:
                fields[name] = context[name]
            elif name == "funcname":
                fields[name] = self.task
            elif name == "today":
                fields[name] = call.today or datetime.date.today()
            elif name == "path":
                root = call.origin.path
                fields[name] = root if root is not None else settings.get("path")
            elif name == "base":
                try:
                    fields[name] = self._token(arguments)
                except TargetError:
                    if self.template is not None or not self.takes_all:
                        raise  # a **kwargs callable that never reads `base` need not have one
            elif self.template is not None:
                available = sorted({"funcname", "today", "path", "base", *context, *arguments})
                raise TargetError(
                    f"task {self.task}: target template {self.template.text!r} uses "
                    f"{{{name}}}, which is neither an argument nor a context variable."
                    f"{did_you_mean(name, available)} Available: {', '.join(available)}. "
                    f"Or set it with pipex.context({name}=...)."
                )
        return fields, given

    def upstream(self, call: Call) -> list[Any]:
        """The upstream nodes of ``call`` whose targets its target reads: all of them for a
        default ``base`` (a token of the arguments) or a callable taking ``**kwargs``, else
        those inside the arguments the template names."""
        deps = call.deps
        if not deps or self.takes_all or "base" in self.needs:
            return list(deps)
        arguments = call.arguments
        read = None
        for name in self.needs:
            value = arguments.get(name)
            if type(value) not in _ATOMS:  # a node, or a container that may hold some
                read = read or _AsTarget(deps)
                visit(value, read.mark)
        return [] if read is None else [dep for dep in deps if id(dep) in read.marked]

    def _check_callable_fields(self, fields: Mapping[str, Any], given: frozenset[str]) -> None:
        """Refuse a text argument a target callable receives that could leave the root."""
        passed = given if self.takes_all else given & self.names
        for name in passed:
            value = fields[name]
            if isinstance(value, (str, os.PathLike)) and not isinstance(value, Target):
                text = os.fspath(value)
                if isinstance(text, str):
                    check_named(text, name, repr(self.option), self.task)
                    check_contained(text, name, repr(self.option), self.task)
                    check_segments(text, name, repr(self.option), self.task)

    def _check_callable_location(self, location: str) -> None:
        check_named(location, "location", repr(self.option), self.task)
        norm = posixpath.normpath(location) if location else location
        if not location or norm == ".." or norm.startswith("../"):
            raise TargetError(
                f"task {self.task}: the target callable returned {location!r}, which is "
                "outside the folder it starts in (or empty). Nothing was written. Return a "
                "location below the root (build it from `path`)."
            )

    def _token(self, arguments: Mapping[str, Any]) -> str:
        try:
            return token(*self.token_of(arguments))
        except Exception as exc:
            raise TargetError(
                f"task {self.task}: cannot derive a default `base` from its arguments ({exc}). "
                "Set one with pipex.context(base=...) or give the task a target template "
                "built from its arguments."
            ) from exc

    def _check_static_suffix(self) -> None:
        """Check the suffix once when the template ends in a literal one (``....pkl``)."""
        assert self.template is not None
        last = self.template.pieces[-1]
        literal = last[0] if last[1] is None else ""
        tail = literal.rsplit("/", 1)[-1]
        self.suffix_known = "." in tail
        if self.save and self.suffix_known:
            self._check_suffix(tail[tail.rindex(".") :], self.option)  # type: ignore[arg-type]

    def _check_suffix(self, suffix: str, path: str) -> None:
        try:
            for_suffix(suffix)
        except SerializerError as exc:
            raise SerializerError(f"task {self.task}, target {path!r}: {exc}") from None


class _AsTarget:
    """Replaces each upstream node of a call by its target (what templates see); ``mark``
    notes the upstream nodes met instead."""

    __slots__ = ("marked", "upstream")

    def __init__(self, deps: tuple[Any, ...]) -> None:
        self.upstream = {id(dep): dep for dep in deps}
        self.marked: set[int] = set()

    def __call__(self, value: Any) -> Any:
        dep = self.upstream.get(id(value))
        return value if dep is None else dep.target

    def mark(self, value: Any) -> None:
        if id(value) in self.upstream:
            self.marked.add(id(value))


def _normalized(location: str) -> str:
    """``posixpath.normpath``, skipped for locations it would not change (the usual case)."""
    if "//" in location or "/." in location or location[:2] == "./" or location[-1:] == "/":
        return posixpath.normpath(location)
    return location


@functools.lru_cache(maxsize=16)
def _file_store(cwd: str) -> FileStore:
    return FileStore(cwd)
