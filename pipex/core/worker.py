"""What runs on a worker for one node: load inputs, call the function, save, report.

A task returns its small :class:`Target` (never its data), or a :class:`Failure` /
:class:`NotRun` outcome so that independent work goes on and the client can report every
failure at once.
"""

from __future__ import annotations

import pickle
import threading
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pipex.core.outcomes import (
    Claimed,
    Failure,
    Found,
    NotRun,
    Outcome,
    Waited,
    failed_inputs,
    mark_raised,
)
from pipex.core.targets import Target
from pipex.core.walk import replace
from pipex.exceptions import PipexError, StoreError
from pipex.stores.claims import held


class Runnable(Protocol):
    """What a worker needs of a task (a :class:`pipex.TaskFunction`)."""

    save: bool
    target_parameters: frozenset[str]

    def call(self, arguments: Mapping[str, Any], target: str) -> Any: ...


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

    task: Runnable
    arguments: Mapping[str, Any]
    target: Target
    key: str
    linked: frozenset[str] = frozenset()  # the argument names that hold Inputs
    rewrite: bool = False  # the target exists but is stale: its existence is not "done"
    #: A target (or input) another runner claimed is not waited for: :class:`Claimed` at once.
    defer: bool = False

    def with_task(self, task: Runnable) -> Call:
        """This call with another task (what ``dataclasses.replace`` does, at a tenth of
        its cost: it runs once per step of a fused chain)."""
        return Call(
            task, self.arguments, self.target, self.key, self.linked, self.rewrite, self.defer
        )

    def __dask_tokenize__(self) -> tuple[str, str]:
        """What dask tokenizes a task's call by: its key, which names the call's target
        (without it, dask pickles and unpickles every call, its function included)."""
        return ("pipex.Call", self.key)


def too_deep_to_send(exc: BaseException, tasks: Iterable[str]) -> PipexError | None:
    """The error to raise when ``exc`` is pickle giving up on sending ``tasks`` to another
    process because a value in their arguments is nested too deeply; else ``None``."""
    text = str(exc)
    if not (
        (isinstance(exc, pickle.PicklingError) and "recursion" in text)
        or (isinstance(exc, RecursionError) and "pickl" in text)
    ):
        return None
    return PipexError(
        f"pipex task(s) {', '.join(sorted(tasks)) or '(unknown)'} could not be sent to "
        "another process: a value in their arguments is nested too deeply for pickle, which "
        "recurses once per level and gives up near Python's recursion limit (about 1,000 "
        "levels). Their targets were not written. Flatten that argument, build it in an "
        "upstream pipex task and pass its node, or run on the threads scheduler (the "
        "default), which sends nothing to another process."
    )


def execute_call(call: Call, keep_going: bool, *inputs: Outcome) -> Outcome:
    """Run one node; with ``keep_going`` a raised exception becomes a :class:`Failure`.

    The target is claimed while the node runs: if another runner holds it, this one waits
    and returns :class:`Waited` once the other wrote it (:mod:`pipex.stores.claims`); with
    ``call.defer`` it returns :class:`Claimed` at once instead (and so does a call whose
    input is :class:`Claimed`), for the run to come back to it later.
    """
    causes = failed_inputs(inputs)
    if causes:
        return NotRun(call.key, call.target, causes)
    target = call.target
    if call.defer and any(type(value) is Claimed for value in inputs):
        return Claimed(call.key, target)
    try:
        claim = held(target.store, target.path, call.task.save, call.rewrite, not call.defer)
        with claim as mine:
            if not mine:
                if claim.busy is not None:  # another live runner is writing it
                    return Claimed(call.key, target, claim.busy[0])
                # written meanwhile: by another runner, or by an earlier attempt
                return (Waited if claim.waited else Found)(target.path, target.store)
            arguments = _resolve(call, inputs)
            if call.task.save:
                result = call.task.call(arguments, "")
                _refuse_nodes(result, call)
                target.store.save(target.path, result)
            else:
                with target.store.temporary(target.path) as tmp:
                    call.task.call(arguments, tmp)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        if isinstance(exc, KeyboardInterrupt) and _in_main_thread():
            raise  # Ctrl-C: the user stops the run
        if not keep_going:
            mark_raised(exc, call.key, call.target)
            raise
        return Failure(call.key, call.target, exc, traceback.format_exc())
    return call.target


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _refuse_nodes(result: Any, call: Call) -> None:
    """Refuse a result that holds pipex nodes (or other dask collections): they are lazy
    calls, not data, and would be saved without ever running."""
    items = result.values() if type(result) is dict else result
    values = items if type(result) in (list, tuple, set, frozenset, dict) else (result,)
    for value in values:
        if hasattr(value, "__dask_graph__") and not isinstance(value, type):
            raise TypeError(
                f"task {call.key} returned pipex nodes (or another lazy dask collection, "
                f"{type(value).__name__}) as its output: they are calls, not data, and would "
                f"never run. Target {call.target} was not written. To make tasks from a "
                "task's data, return the data and expand the node: pipex.expand(node, fn) "
                "calls fn on the node's output and runs the nodes fn returns "
                "(docs/concepts.md, 'Fan-out')."
            )


def _load(target: Target, call: Call) -> Any:
    try:
        return target.load()
    except Exception as exc:
        raise StoreError(
            f"task {call.key} cannot read its input {target}: {type(exc).__name__}: {exc}. "
            "If that file is damaged, delete it: the next run rebuilds it."
        ) from exc


class _Inputs:
    """Fills :class:`Input` placeholders with the inputs' data (each loaded once) or Targets."""

    __slots__ = ("as_target", "call", "inputs", "loaded")

    def __init__(self, call: Call, inputs: tuple[Outcome, ...]) -> None:
        self.call = call
        self.inputs = inputs
        self.loaded: dict[int, Any] = {}
        self.as_target = False

    def __call__(self, value: Any) -> Any:
        if type(value) is not Input:
            return value
        target = self.inputs[value.index]
        if self.as_target:
            return target
        if value.index not in self.loaded:
            self.loaded[value.index] = _load(target, self.call)  # type: ignore[arg-type]
        return self.loaded[value.index]


def _resolve(call: Call, inputs: tuple[Outcome, ...]) -> dict[str, Any]:
    """The call's arguments with each upstream input loaded (or kept as a Target)."""
    arguments = dict(call.arguments)
    if not inputs:
        return arguments
    fill = _Inputs(call, inputs)
    wants_target = call.task.target_parameters
    for name in call.linked:
        fill.as_target = name in wants_target
        arguments[name] = replace(arguments[name], fill)
    return arguments
