"""The user's pipeline, named as uvicorn and celery name an app: ``FILE.py:FUNC`` or
``MODULE:FUNC``, a function returning the nodes, called with ``--param key=value`` options."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import sysconfig
import traceback
import typing
from collections.abc import Callable, Sequence
from typing import Any

import click

from pipex.core.outcomes import one_line
from pipex.steer.graph import collect

#: The ``--param KEY=VALUE`` option of every command that takes an entry point.
params = click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="An argument of the entry point function (repeat for several).",
)


class UsageError(click.ClickException):
    """A usage error in one line, without the usage banner (a bad entry point): exit code 2."""

    exit_code = 2


def nodes(spec: str, params: Sequence[str]) -> list[Any]:
    """The nodes the entry point ``spec`` returns, called with ``params`` (``key=value``)."""
    function = load(spec)
    kwargs = arguments(function, spec, params)
    try:
        returned = function(**kwargs)
    except Exception as exc:
        raise UsageError(f"{spec} failed while building the pipeline: {described(exc)}") from None
    found = collect([returned])
    if not found:
        raise UsageError(
            f"{spec} returned {type(returned).__name__}, with no pipex node in it: return the "
            "pipeline's final nodes (a node, or a list or dict of nodes)"
        )
    return found


def load(spec: str) -> Callable[..., Any]:
    """The function ``spec`` names: ``path/to/file.py:func`` or ``package.module:func``."""
    where, _, name = spec.rpartition(":")
    if not where or not name.isidentifier():
        raise UsageError(
            f"entry point {spec!r} must be FILE.py:FUNCTION or MODULE:FUNCTION, "
            "e.g. pipeline.py:build"
        )
    module = _from_file(where, spec) if where.endswith(".py") else _from_module(where, spec)
    function = getattr(module, name, None)
    if not callable(function):
        raise UsageError(
            f"{where} has no function {name!r} (entry point {spec}); it defines: "
            + ", ".join(n for n, v in vars(module).items() if inspect.isfunction(v))
        )
    return function


def arguments(function: Callable[..., Any], spec: str, params: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings as keyword arguments, converted by each parameter's type."""
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        hints = {}
    kwargs: dict[str, Any] = {}
    for item in params:
        key, equals, text = item.partition("=")
        parameter = signature.parameters.get(key)
        if not equals or parameter is None:
            accepted = ", ".join(signature.parameters) or "none"
            raise UsageError(
                f"--param {item!r}: give KEY=VALUE with KEY a parameter of {spec} ({accepted})"
            )
        kind = hints.get(key)
        if kind not in (int, float, bool, str) and parameter.default is not parameter.empty:
            kind = type(parameter.default)
        try:
            kwargs[key] = click.types.convert_type(kind).convert(text, None, None)
        except click.BadParameter as exc:
            raise UsageError(f"--param {item!r}: {exc.message}") from None
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        raise UsageError(f"{spec}: {exc}; pass it as --param KEY=VALUE") from None
    return kwargs


def _from_file(path: str, spec: str) -> Any:
    if not os.path.isfile(path):
        raise UsageError(f"no file {path} (entry point {spec})")
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the pipeline's own imports of its neighbours work
    name = os.path.splitext(os.path.basename(path))[0]
    found = importlib.util.spec_from_file_location(name, path)
    if found is None or found.loader is None:
        raise UsageError(f"cannot import {path} (entry point {spec})")
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module
    try:
        found.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise UsageError(f"importing {path} failed: {described(exc)}") from None
    return module


def _from_module(name: str, spec: str) -> Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            raise UsageError(
                f"no module {name} (entry point {spec}); for a file, write FILE.py:FUNCTION"
            ) from None
        raise UsageError(f"importing {name} failed: {described(exc)}") from None
    except Exception as exc:
        raise UsageError(f"importing {name} failed: {described(exc)}") from None


def described(exc: BaseException) -> str:
    """The error of the user's code in one line, ending with the line of the user's code
    that raised it (``(at file.py:12: the line)``); a syntax error as Python shows it, the
    file and line first, then the offending line and a caret under the fault."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        shown = "".join(traceback.format_exception_only(exc)).splitlines()[1:]
        source = [line for line in shown if line.startswith("    ")]  # the line, the caret
        return "\n".join([f"{_relative(exc.filename)}:{exc.lineno}: {one_line(exc)}", *source])
    frame = _users_frame(exc)
    if frame is None:
        return one_line(exc)
    where = f"{_relative(frame.filename)}:{frame.lineno}"
    return (
        f"{one_line(exc)} (at {where}: {frame.line})"
        if frame.line
        else f"{one_line(exc)} ({where})"
    )


def _users_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of ``exc`` in the user's own files: not pipex's, not the import
    machinery's, not an installed library's (if none, the innermost that is not pipex's)."""
    pipex = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    paths = sysconfig.get_paths()
    libraries = tuple(
        os.path.abspath(paths[k]) + os.sep for k in ("stdlib", "platstdlib", "purelib", "platlib")
    )
    outside = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<")
        and not os.path.abspath(frame.filename).startswith(pipex)
    ]
    own = [f for f in outside if not os.path.abspath(f.filename).startswith(libraries)]
    found = own or outside
    return found[-1] if found else None


def _relative(filename: str) -> str:
    """``filename`` from the working directory when it lies below it."""
    path = os.path.relpath(os.path.abspath(filename))
    return filename if path.startswith(os.pardir) else path
