"""What runs on a worker for one node: load inputs, call the function, save, report.

A task returns its small :class:`Target` (never its data), or a :class:`Failure` /
:class:`NotRun` outcome so that independent work goes on and the client can report every
failure at once.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from pipex.exceptions import StoreError
from pipex.targets import Target

if TYPE_CHECKING:
    from pipex.task import TaskFunction


class Input:
    """Placeholder for the ``index``-th upstream input inside a call's arguments."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple[Any, ...]:
        return (Input, (self.index,))


@dataclass(frozen=True, slots=True)
class Call:
    """Everything a worker needs to run one node (no upstream nodes, only placeholders)."""

    task: TaskFunction
    arguments: Mapping[str, Any]
    target: Target
    key: str
    linked: frozenset[str] = frozenset()  # the argument names that hold Inputs


@dataclass(frozen=True)
class Failure:
    """A task that raised: its exception and the traceback text from where it ran."""

    key: str
    target: Target
    exception: BaseException
    traceback: str

    def __reduce__(self) -> tuple[Any, ...]:
        try:
            cloudpickle.dumps(self.exception)
            exception = self.exception
        except Exception:
            exception = RuntimeError(f"{type(self.exception).__name__}: {self.exception}")
        return (Failure, (self.key, self.target, exception, self.traceback))


@dataclass(frozen=True)
class NotRun:
    """A task skipped because an input failed; ``causes`` are the failed tasks' keys."""

    key: str
    target: Target
    causes: frozenset[str] = field(default_factory=frozenset)


Outcome = Target | Failure | NotRun
CONTAINERS = (list, tuple, set, frozenset)  # searched for upstream nodes (dicts too)


def run(call: Call, keep_going: bool, *inputs: Outcome) -> Outcome:
    """Run one node; with ``keep_going`` a raised exception becomes a :class:`Failure`."""
    causes = _failed_inputs(inputs)
    if causes:
        return NotRun(call.key, call.target, causes)
    try:
        arguments = _resolve(call, inputs)
        target = call.target
        if call.task.save:
            target.store.save(target.path, call.task.call(arguments, ""))
        else:
            with target.store.temporary(target.path) as tmp:
                call.task.call(arguments, tmp)
    except Exception as exc:
        if not keep_going:
            exc.add_note(f"pipex task {call.key} failed; target {call.target} was not written")
            raise
        return Failure(call.key, call.target, exc, traceback.format_exc())
    return call.target


def _failed_inputs(inputs: tuple[Outcome, ...]) -> frozenset[str]:
    causes: set[str] = set()
    for value in inputs:
        if isinstance(value, Failure):
            causes.add(value.key)
        elif isinstance(value, NotRun):
            causes.update(value.causes)
    return frozenset(causes)


def _load(target: Target, call: Call) -> Any:
    try:
        return target.load()
    except Exception as exc:
        raise StoreError(
            f"task {call.key} cannot read its input {target}: {type(exc).__name__}: {exc}. "
            "If that file is damaged, delete it: the next run rebuilds it."
        ) from exc


def _resolve(call: Call, inputs: tuple[Outcome, ...]) -> dict[str, Any]:
    """The call's arguments with each upstream input loaded (or kept as a Target)."""
    if not inputs:
        return dict(call.arguments)
    loaded: dict[int, Any] = {}
    wants_target = call.task.target_parameters
    arguments = dict(call.arguments)
    for name in call.linked:
        arguments[name] = _fill(arguments[name], name in wants_target, call, inputs, loaded)
    return arguments


def _fill(
    value: Any, as_target: bool, call: Call, inputs: tuple[Outcome, ...], loaded: dict[int, Any]
) -> Any:
    """``value`` with its Input placeholders replaced by the inputs' data (or Targets).

    A plain function, not a closure: a recursive closure is a reference cycle that would keep
    every loaded input alive until the garbage collector happens to run.
    """
    if type(value) is Input:
        target = inputs[value.index]
        if as_target:
            return target
        if value.index not in loaded:
            loaded[value.index] = _load(target, call)  # type: ignore[arg-type]
        return loaded[value.index]
    if type(value) in CONTAINERS:
        return type(value)(_fill(v, as_target, call, inputs, loaded) for v in value)
    if type(value) is dict:
        return {k: _fill(v, as_target, call, inputs, loaded) for k, v in value.items()}
    return value
