"""Binding a call's arguments to a function's parameters, with a fast path for plain ones."""

from __future__ import annotations

import inspect
import keyword
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pipex.core.targets import Target

_SIMPLE_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_TARGET_WORD = re.compile(r"\bTarget\b")


class Binder:
    """Binds calls of one function: ``bind(args, kwargs)`` -> arguments by name."""

    __slots__ = (
        "_defaults",
        "_n_positional",
        "_name_set",
        "exact",
        "names",
        "pack",
        "signature",
        "simple",
        "task",
    )

    def __init__(self, signature: inspect.Signature, task: str) -> None:
        self.signature = signature
        self.task = task
        params = list(signature.parameters.values())
        self.names = tuple(p.name for p in params)
        self._name_set = frozenset(self.names)
        self.simple = all(p.kind in _SIMPLE_KINDS for p in params)
        self._n_positional = sum(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
        self._defaults = {p.name: p.default for p in params if p.default is not p.empty}
        #: How many positional arguments fill every parameter (-1: none do).
        self.exact = len(params) if self.simple and self._n_positional == len(params) else -1
        #: ``pack(*args)``: the arguments by name of a call that gives ``exact`` positionals.
        self.pack = _packer(self.names)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied."""
        if not kwargs and len(args) == self.exact:  # every parameter given by position
            return self.pack(*args)
        if self.simple and len(args) <= self._n_positional:
            arguments = dict(zip(self.names, args, strict=False))
            ok = True
            for key, value in kwargs.items():
                if key in arguments or key not in self._name_set:
                    ok = False
                    break
                arguments[key] = value
            if ok and len(arguments) < len(self.names):
                for key, value in self._defaults.items():
                    arguments.setdefault(key, value)
            if ok and len(arguments) == len(self.names):
                return arguments
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.task}(): {exc}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def call(self, fn: Callable[..., Any], arguments: Mapping[str, Any], **extra: Any) -> Any:
        """``fn`` called with bound ``arguments`` (and ``extra`` keywords)."""
        if self.simple:
            return fn(**arguments, **extra)
        bound = inspect.BoundArguments(self.signature, dict(arguments))
        return fn(*bound.args, **bound.kwargs, **extra)


def _packer(names: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """``lambda a, b: {"a": a, "b": b}`` for these parameter names: a dict display binds a
    call given by position ~3x faster than ``dict(zip(names, args))`` (graph building's hot
    path). Built from the names alone, which a signature guarantees are identifiers."""
    if not all(n.isidentifier() and not keyword.iskeyword(n) for n in names):
        return lambda *args: dict(zip(names, args, strict=True))
    fields = ", ".join(f"{name!r}: {name}" for name in names)
    return eval(f"lambda {', '.join(names)}: {{{fields}}}", {})


def without_target_parameter(signature: inspect.Signature, task: str) -> inspect.Signature:
    """The signature of a ``save=False`` task, less the ``target`` pipex passes itself."""
    params = signature.parameters
    if "target" in params:
        return signature.replace(parameters=[p for n, p in params.items() if n != "target"])
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return signature
    raise TypeError(
        f"task {task} has save=False, so it must write its output itself: add a `target` "
        "parameter; pipex passes it the temporary path to write"
    )


def target_annotated(fn: Callable[..., Any], names: tuple[str, ...]) -> frozenset[str]:
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
